import { app } from '@azure/functions';
import { getAppServices } from '../lib/app-services';
import { createHealthHandler } from '../lib/health';

app.http('health', {
  methods: ['GET'],
  authLevel: 'anonymous',
  route: 'health',
  handler: createHealthHandler(getAppServices().tokenTable),
});
