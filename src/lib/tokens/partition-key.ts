/**
 * A user's partition in the token table: MSAL's `homeAccountId` (`<oid>.<tid>`), which the IdP
 * vouches for. Checked against the characters Table Storage allows in a key, so a surprising id
 * fails loudly instead of addressing the wrong row.
 */
export function partitionKeyOf(homeAccountId: string): string {
  if (!/^[A-Za-z0-9._-]{1,200}$/.test(homeAccountId)) {
    throw new Error('the account id is not usable as a partition key');
  }
  return homeAccountId;
}
