// `npm start` runs `func start`. Without Azure Functions Core Tools, say so before the build
// rather than `sh: func: not found` after it, and name the command that works without it.
import { spawnSync } from 'node:child_process';

const found = spawnSync('func', ['--version'], { stdio: 'ignore' });
if (found.error !== undefined || found.status !== 0) {
  console.error(`npm start: Azure Functions Core Tools (the \`func\` command) is not installed here.

Its npm package, azure-functions-core-tools (an optional dependency of this project), downloads the
Core Tools binary while it installs; where that download is blocked or failed, \`func\` is missing.

- npm run start:local serves the same HTTP functions from the same build without Core Tools
  (settings from local.settings.json, as func reads them);
- npm run dev runs the whole app offline (Azurite, the Entra emulator, the sample API);
- or install Core Tools: https://learn.microsoft.com/azure/azure-functions/functions-run-local`);
  process.exit(1);
}
