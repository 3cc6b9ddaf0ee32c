import { app } from '@azure/functions';
import { getAppServices } from '../lib/app-services';
import { createCleanupHandler } from '../lib/tokens/cleanup-handler';

// Daily, off-peak (UTC).
app.timer('tokenCacheCleanup', {
  schedule: '0 30 3 * * *',
  handler: createCleanupHandler(getAppServices()),
});
