// Runs a program that does not watch its stdin (nginx, evmux) so that it cannot outlive run-all:
// the program is killed when this process's stdin (a pipe from run-all) closes, which also
// happens when run-all is killed with SIGKILL, and after a hard lifetime in any case.
//
//   node dist/bench/reaper.js MAX_SECONDS COMMAND [ARGS...]
//
// SIGTERM and SIGINT are forwarded; the program's exit status becomes this process's.
import { spawn } from 'node:child_process';
import { stdinIsPipe } from './process-util.js';

const [maxArg, cmd, ...args] = process.argv.slice(2);
const maxSeconds = Number(maxArg);
if (cmd === undefined || !Number.isFinite(maxSeconds)) {
  process.stderr.write('usage: reaper MAX_SECONDS COMMAND [ARGS...]\n');
  process.exit(2);
}

const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
const kill = (): void => {
  child.kill('SIGKILL');
};
const lifetime = setTimeout(() => {
  process.stderr.write(`reaper: ${cmd} reached its ${maxSeconds}s lifetime, killing it\n`);
  kill();
}, maxSeconds * 1000);

if (stdinIsPipe()) {
  process.stdin.on('end', kill);
  process.stdin.on('error', kill);
  process.stdin.resume();
}
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => child.kill(sig));

child.on('error', (err) => {
  process.stderr.write(`reaper: cannot start ${cmd}: ${err.message}\n`);
  process.exit(127);
});
child.on('exit', (code, signal) => {
  clearTimeout(lifetime);
  process.exit(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 1));
});
