/**
 * Reading Prometheus text in tests: the sum of every sample of a metric whose labels include the
 * given ones (e.g. all methods and outcomes of evmux_requests_total for one upstream).
 */

/** Values of the samples of `name` whose labels contain every pair in `labels`, in text order. */
export function matchingSamples(text: string, name: string, labels: Record<string, string> = {}): number[] {
  const values: number[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = /\{(.*)\}/.exec(line)?.[1] ?? '';
    const found = Object.fromEntries([...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) values.push(Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return values;
}

/** Sum of the samples of `name` whose labels contain every pair in `labels`; 0 when none match. */
export function sumSamples(text: string, name: string, labels: Record<string, string> = {}): number {
  return matchingSamples(text, name, labels).reduce((sum, value) => sum + value, 0);
}

/** GET /metrics of a gateway at `httpUrl` and sum one metric. */
export async function scrapeSum(httpUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const response = await fetch(new URL('/metrics', httpUrl));
  return sumSamples(await response.text(), name, labels);
}
