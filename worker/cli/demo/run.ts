/** Placeholder replaced below in this commit series: the demo needs the middleware set (issue 5). */
export async function runDemo(): Promise<number> {
  console.error("troupe demo: the demo needs the middleware set, which is not built yet");
  return 1;
}
