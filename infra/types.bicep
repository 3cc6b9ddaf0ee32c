// Types main.bicep and app.bicep share (compile-time imports, Bicep 0.25.3 or later). ARM checks a
// parameter value against its type before anything is deployed.

@export()
@sealed()
@description('One API the app proxies under /api/<name> besides todos; it becomes the DOWNSTREAM_API_<NAME>_* settings (README, "Settings"). Sealed: a misspelt property fails the deployment instead of being ignored.')
type downstreamApi = {
  @minLength(1)
  @maxLength(32)
  @description('The path segment after /api/: [a-z][a-z0-9-]{0,31}, not "todos" (the ToDoList API of the todoList* parameters).')
  name: string

  @minLength(9)
  @description('Base URL (https, no query or fragment); the only place this API\'s calls go.')
  url: string

  @minLength(1)
  @description('Full scopes of this API for GET and HEAD, e.g. api://<api client ID>/Notes.Read.')
  readScopes: string[]

  @minLength(1)
  @description('Full scopes of this same API for POST, PUT, PATCH and DELETE.')
  writeScopes: string[]

  @minValue(100)
  @maxValue(120000)
  @description('Timeout of one call, in milliseconds; absent, 10000.')
  timeoutMs: int?
}
