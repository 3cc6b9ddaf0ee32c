import { app } from '@azure/functions';
import { getAppServices } from '../lib/app-services';

// The host cannot route an empty template to a function; an optional segment of length 0
// matches only the site root (Azure/Azure-Functions#2473).
app.http('webPage', {
  methods: ['GET'],
  authLevel: 'anonymous',
  route: '{root:maxlength(0)?}',
  handler: getAppServices().webSite.pageHandler,
});
