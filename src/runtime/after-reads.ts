/**
 * Judgments that a timer triggers (a call overdue, a pong overdue, a node behind) wait for the
 * reads of the loop turn the timer fires in. libuv runs due timers before it polls the sockets,
 * and evmux paused for a while (a VM migrated, a container throttled, SIGSTOP, a long GC) resumes
 * with every deadline past and the nodes' answers, pongs and heads for that time unread in its
 * sockets: judged first, healthy nodes had their calls time out, their sockets cut and their
 * breakers opened for evmux's own pause. An immediate runs after the poll phase of the same turn,
 * so what had arrived is read by then, and counts.
 */
export function afterReads(judge: () => void): void {
  setImmediate(judge);
}
