/** Runs the gatepool CLI from source: `node --import tsx test/helpers/cli-entry.ts <args>`. */
import { main } from '../../src/cli/index.js';

await main(process.argv);
