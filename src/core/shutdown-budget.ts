// How long a long-running process (`worker`, `serve`) may spend at exit after the wait for
// running work (queue.shutdownTimeout): closing the queue, the slot limiter, the HTTP server,
// flushing alerts and closing the pools all share it. docs/kubernetes.md sizes the pod's
// terminationGracePeriodSeconds from shutdownTimeout plus this.

/** The close budget after queue.shutdownTimeout, ms. */
export const EXIT_BUDGET_MS = 1500;

/** A last resort beyond the budget: the process exits even if a close ignored its deadline. */
export const EXIT_BACKSTOP_MS = 500;
