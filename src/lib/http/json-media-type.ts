/**
 * True for `application/json` and `application/<x>+json` in UTF-8 (RFC 8259: JSON is UTF-8, so a
 * body declared in another charset would be misread).
 */
export function isJsonMediaType(contentType: string | null | undefined): boolean {
  if (contentType === null || contentType === undefined) return false;
  const [type = '', ...parameters] = contentType
    .split(';')
    .map((part) => part.trim().toLowerCase());
  const charset = parameters.find((parameter) => parameter.startsWith('charset='));
  const utf8 = charset === undefined || /^charset="?utf-8"?$/.test(charset);
  return utf8 && (type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type));
}
