/** The gatepool CLI from source, for tests (helpers/entry.ts bundles it; tsx runs it as is). */
import { main } from '../../src/cli/index.js';

await main(process.argv);
