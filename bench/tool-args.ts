// Flags of the bench tools: node's parseArgs, plus `--help` (each flag with its default) and, for a
// flag it does not know or a missing value, a one-line message and exit code 2 instead of a stack
// trace. What each flag means is in the comment at the top of the tool's file.
import { basename } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values<T extends Options> = ReturnType<typeof parseArgs<{ options: T }>>['values'];

/** The flags of the tool started as `node dist/bench/<file>.js`, parsed by `options`. */
export function toolArgs<const T extends Options>(file: string, options: T): Values<T> {
  const tool = basename(file).replace(/\.[jt]s$/, '');
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ options: { ...options, help: { type: 'boolean' } } }).values;
  } catch (error) {
    process.stderr.write(`${tool}: ${(error as Error).message}\n\n${usage(tool, options)}`);
    process.exit(2);
  }
  if (values['help'] === true) {
    process.stdout.write(usage(tool, options));
    process.exit(0);
  }
  delete values['help'];
  return values as Values<T>;
}

function usage(tool: string, options: Options): string {
  const flags = Object.entries(options).map(([name, option]) => {
    const value = option.type === 'string' ? ' <value>' : '';
    const repeat = option.multiple === true ? ', repeatable' : '';
    const fallback = option.default === undefined ? '' : `, default ${String(option.default)}`;
    return `  --${name}${value}${repeat || fallback ? ` (${`${repeat}${fallback}`.slice(2)})` : ''}`;
  });
  return `usage: node dist/bench/${tool}.js [flags]\n${flags.join('\n')}\n  --help\nsee the comment at the top of bench/${tool}.ts for what each flag does\n`;
}
