/**
 * The evmux command: flags, config, the demo devnet, the gateway, signals. With no arguments it runs
 * the demo devnet; with --upstream or --config it fronts real nodes. Exit codes: 0 clean shutdown,
 * 2 bad flags or config, 1 anything else. cli.ts loads it.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, constants } from 'node:os';
import { parseArgs } from 'node:util';
import { buildConfig, readConfigFile, type FlagSettings } from './config/load.js';
import { ConfigError, type Config } from './config/schema.js';
import { demoBanner, startDemoDevnet, type Demo } from './demo.js';
import { Gateway } from './gateway.js';
import { createLogger, type Logger } from './log.js';
import { ListenError } from './server/listen-error.js';
import { applyHelperThreadPriority } from './runtime/helper-threads.js';
import { DEMO_FREE_FILES, enoughFilesToStart, reportOutOfFilesAtStart } from './runtime/out-of-files-at-start.js';
import { stdout } from './stdout-writer.js';
import { SEMI_SPACE_MB, YOUNG_GENERATION_FLAGS, semiSpaceMb } from './runtime/young-generation.js';

const USAGE = `usage: evmux [options]

  --config FILE        YAML or JSON settings (see README "Configuration")
  --host H             listen address (default 127.0.0.1)
  --port N             listen port (default 8547; 0 picks a free one)
  --upstream [NAME=]URL  upstream node WebSocket URL, repeatable (replaces the file's list)
  --demo               start a local 3-node anvil devnet and front it (the default with no arguments)
  --log-level L        fatal|error|warn|info|debug|trace|silent (default info)
  --help, --version
`;

/** package.json sits one level up from src/ and two from dist/src/. */
function packageVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'evmux' && pkg.version !== undefined) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}

function fail(message: string): never {
  process.stderr.write(`evmux: ${message}\n`);
  process.exit(2);
}

function parseFlags(argv: string[]): { flags: FlagSettings; configPath?: string; demo: boolean } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        upstream: { type: 'string', multiple: true },
        demo: { type: 'boolean' },
        'log-level': { type: 'string' },
        help: { type: 'boolean' },
        version: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    fail(`${(error as Error).message}\n\n${USAGE}`);
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (values.version) {
    process.stdout.write(`${packageVersion()}\n`);
    process.exit(0);
  }
  const flags: FlagSettings = {};
  if (values.host !== undefined) flags.host = values.host;
  if (values.port !== undefined) {
    if (!/^\d+$/.test(values.port)) fail(`--port: expected a number from 0 to 65535, got "${values.port}"`);
    flags.port = Number(values.port);
  }
  if (values['log-level'] !== undefined) flags.logLevel = values['log-level'];
  if (values.upstream !== undefined) flags.upstreams = values.upstream;
  // The demo runs nodes of its own: an --upstream beside it would be passed over without a word.
  if (values.demo === true && values.upstream !== undefined) fail('--demo runs its own nodes: give --upstream without --demo');
  const demo = values.demo === true || (values.config === undefined && values.upstream === undefined);
  return { flags, demo, ...(values.config !== undefined && { configPath: values.config }) };
}

/** Helper threads at idle priority as config.helperThreads asks; says what happened. */
async function prioritizeEventLoop(config: Config, logger: Logger): Promise<void> {
  const cpus = availableParallelism();
  const outcome = await applyHelperThreadPriority(config.helperThreads, cpus);
  if (outcome.reason === undefined) logger.info({ threads: outcome.idled, cpus }, 'helper threads run at idle CPU priority');
  else if (outcome.wanted) logger.warn({ threads: outcome.idled, cpus, reason: outcome.reason }, 'could not put every helper thread at idle CPU priority');
  else logger.debug({ cpus, reason: outcome.reason }, 'helper threads keep normal CPU priority');
}

/** Signals that stop evmux: SIGHUP too, sent when its terminal closes. */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/**
 * Until evmux is up, a stop signal ends it at once, through process.exit: a process killed by the
 * signal itself runs no exit hooks, and the demo's anvil nodes (killed by one) would outlive it.
 */
function exitOnSignal(signal: NodeJS.Signals): void {
  process.exit(128 + (constants.signals[signal] ?? 0));
}

async function main(): Promise<void> {
  for (const signal of STOP_SIGNALS) process.on(signal, exitOnSignal);
  const { flags, configPath, demo } = parseFlags(process.argv.slice(2));
  const file = configPath === undefined ? undefined : readConfigFile(configPath);
  let demoNet: Demo | undefined;
  let logger: Logger;
  let config: Config;
  if (demo) {
    if (!(await enoughFilesToStart(DEMO_FREE_FILES, 'the demo'))) process.exit(1);
    // Validate everything but the upstream list before spending time on the devnet.
    const placeholder = buildConfig(file, { ...flags, upstreams: ['ws://127.0.0.1:1'] });
    logger = createLogger(placeholder.logLevel);
    demoNet = await startDemoDevnet(logger);
    config = buildConfig({ ...file, upstreams: demoNet.upstreams }, { ...flags, upstreams: [] });
  } else {
    config = buildConfig(file, flags);
    logger = createLogger(config.logLevel);
  }
  const semiSpace = semiSpaceMb();
  if (semiSpace < SEMI_SPACE_MB) {
    logger.warn(
      { semiSpaceMb: semiSpace, wantedMb: SEMI_SPACE_MB },
      `young generation is ${semiSpace} MB: start evmux through its command (npx evmux, npm start) or pass node ${YOUNG_GENERATION_FLAGS.join(' ')}; without them call latency has a longer tail`,
    );
  }
  await prioritizeEventLoop(config, logger);
  const gateway = await Gateway.start(config, logger);
  if (demoNet !== undefined) stdout().write(demoBanner(config, gateway.port, demoNet.devnet, gateway.adminPort));

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, 'signal received');
    gateway
      .close()
      .then(() => demoNet?.devnet.close())
      .then(
        () => {
          logger.flush();
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  // The new listener first: with none left for a moment, Node closes the signal's handle, and a
  // signal caught but not yet handled goes with it (a stop at the end of the start was lost).
  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => stop(signal));
    process.off(signal, exitOnSignal);
  }
}

/** Run the command; failures to start end the process with a message and exit code 1 or 2. */
export function runCommand(): void {
  main().catch((error: unknown) => {
    if (error instanceof ConfigError) fail(`config error: ${error.message}`);
    if (error instanceof ListenError) {
      process.stderr.write(`evmux: ${error.message}\n`);
      process.exit(1);
    }
    // The demo's devnet loads a few hundred modules more and starts anvil.
    if (reportOutOfFilesAtStart(error)) process.exit(1);
    process.stderr.write(`evmux: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
