import { app } from '@azure/functions';
import { getAppServices } from '../lib/app-services';

app.http('webStaticFile', {
  methods: ['GET'],
  authLevel: 'anonymous',
  route: 'static/{name}',
  handler: getAppServices().webSite.staticFileHandler,
});
