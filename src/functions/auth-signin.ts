import { app } from '@azure/functions';
import { getAppServices } from '../lib/app-services';
import { createSignInHandler } from '../lib/auth/auth-handlers';

app.http('authSignIn', {
  methods: ['GET'],
  authLevel: 'anonymous',
  route: 'auth/signin',
  handler: createSignInHandler(getAppServices()),
});
