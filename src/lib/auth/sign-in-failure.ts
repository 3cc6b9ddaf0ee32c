// A leaf module, so telemetry can name sign-in failures without importing the sign-in flow (which
// imports the token service, which emits telemetry).

/** Why a callback cannot complete a sign-in; each is answered with a "sign in again" page, no session. */
export type SignInFailure =
  | 'idp_error'
  | 'missing_state'
  | 'expired_state'
  | 'state_mismatch'
  | 'missing_code'
  | 'code_rejected'
  | 'client_credential_rejected'
  | 'admin_consent_missing';
