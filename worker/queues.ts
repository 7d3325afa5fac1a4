/** Queue-name helpers with Dramatiq's exact rules: there is never a `q.DQ.XQ`. */
const QUEUE_NAME = /^[a-zA-Z_][a-zA-Z0-9._-]*$/;

export function isValidQueueName(name: string): boolean {
  return QUEUE_NAME.test(name);
}

export function qName(name: string): string {
  return name.endsWith(".DQ") || name.endsWith(".XQ") ? name.slice(0, -3) : name;
}

export function dqName(name: string): string {
  if (name.endsWith(".DQ")) return name;
  return `${name.endsWith(".XQ") ? name.slice(0, -3) : name}.DQ`;
}

export function xqName(name: string): string {
  if (name.endsWith(".XQ")) return name;
  return `${name.endsWith(".DQ") ? name.slice(0, -3) : name}.XQ`;
}

export function isDelayQueue(name: string): boolean {
  return name.endsWith(".DQ");
}
