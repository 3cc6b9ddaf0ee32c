import { app } from '@azure/functions';
import { getAppServices } from '../lib/app-services';

// The host cannot route an empty template to a function; an optional segment of length 0
// matches only the site root (Azure/Azure-Functions#2473). Every method the library can carry: a
// request on exactly `/` that no function takes gets the host's home page (HomepageMiddleware in
// azure-functions-host), so the handler answers the others with 405 itself. TRACE and CONNECT are
// left out because the library cannot build a request for them (undici's Request refuses those
// methods) and would fail with a 500; they, and methods outside the library's list, get the host's
// 204 (AzureWebJobsDisableHomepage in infra/app.bicep).
app.http('webPage', {
  methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
  authLevel: 'anonymous',
  route: '{root:maxlength(0)?}',
  handler: getAppServices().webSite.pageHandler,
});
