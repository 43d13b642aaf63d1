/**
 * Keeps a PEM given as its own argument attached to its option. A shell
 * passes `--lightning-public-key "$(cat key.pem)"` as two arguments, the
 * second starting with `-----BEGIN`, and yargs reads any argument starting
 * with a dash as a flag: the key was lost and the dashes became unknown
 * options. No option of ours starts with five dashes, so such an argument
 * after a `--name` option is that option's value, and is joined to it as
 * `--name=value` before yargs sees it.
 */
const PEM_START = '-----';

export function attachDashedValues(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const next = args[i + 1];
    if (arg.startsWith('--') && !arg.includes('=') && arg.length > 2 && next !== undefined && next.startsWith(PEM_START)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}
