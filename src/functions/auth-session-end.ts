import { app } from '@azure/functions';
import { getAppServices } from '../lib/app-services';
import { createEndSessionHandler } from '../lib/auth/auth-handlers';

app.http('authSessionEnd', {
  methods: ['DELETE'],
  authLevel: 'anonymous',
  route: 'auth/sessions/{id}',
  handler: createEndSessionHandler(getAppServices()),
});
