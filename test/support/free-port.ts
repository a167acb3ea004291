export { freePort } from '../../src/cli/commands/demo-command.js';
