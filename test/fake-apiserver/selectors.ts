/** Label and field selectors in their query-string form, parsed and matched as the API server does. */
type Requirement =
  | { key: string; op: "=" | "!="; values: [string] }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "!exists"; values: [] };

export type Selector = (labels: Record<string, string> | undefined) => boolean;

/** Split on commas that are not inside `( … )`. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "(") depth++;
    else if (text[i] === ")") depth--;
    else if (text[i] === "," && depth === 0) {
      terms.push(text.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(text.slice(start));
  return terms.map((t) => t.trim()).filter(Boolean);
}

function parseTerm(term: string): Requirement {
  let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
  if (m) return { key: m[1]!, op: m[2] as "in" | "notin", values: m[3]!.split(",").map((v) => v.trim()).filter(Boolean) };
  m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(term);
  if (m) return { key: m[1]!, op: m[2] === "!=" ? "!=" : "=", values: [m[3]!] };
  m = /^(!?)([\w./-]+)$/.exec(term);
  if (m) return { key: m[2]!, op: m[1] ? "!exists" : "exists", values: [] };
  throw new Error(`unable to parse requirement: ${term}`);
}

export function parseLabelSelector(text: string | null): Selector {
  if (!text) return () => true;
  const requirements = splitTerms(text).map(parseTerm);
  return (labels) => requirements.every((r) => {
    const value = labels?.[r.key];
    switch (r.op) {
      case "=": return value === r.values[0];
      case "!=": return value !== r.values[0];
      case "in": return value !== undefined && r.values.includes(value);
      case "notin": return value === undefined || !r.values.includes(value);
      case "exists": return value !== undefined;
      case "!exists": return value === undefined;
    }
  });
}

/** Field selectors over metadata.name and metadata.namespace, the fields every resource supports. */
export function parseFieldSelector(text: string | null): (obj: { metadata: { name: string; namespace?: string } }) => boolean {
  if (!text) return () => true;
  const fields = splitTerms(text).map((term) => {
    const m = /^(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw new Error(`field label not supported: ${term}`);
    return { field: m[1] === "metadata.name" ? ("name" as const) : ("namespace" as const), negate: m[2] === "!=", value: m[3]! };
  });
  return (obj) => fields.every((f) => (obj.metadata[f.field] === f.value) !== f.negate);
}
