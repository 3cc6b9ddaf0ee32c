import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';

/**
 * How the app proves itself to the IdP when it redeems a code or a refresh token: a client secret,
 * or a certificate whose private key signs a client assertion (`private_key_jwt`; no secret
 * exists). Entra wants the assertion signed with PS256 and named by the certificate's SHA-256
 * thumbprint (`x5t#S256`): https://learn.microsoft.com/entra/identity-platform/certificate-credentials
 */
export type ClientCredential =
  | { readonly kind: 'secret'; readonly secret: string }
  | {
      readonly kind: 'certificate';
      /** The unencrypted private key, PKCS#8 PEM, as msal-node wants it. */
      readonly privateKeyPem: string;
      /** The certificate (PEM) the key belongs to, sent as `x5c`. */
      readonly certificatePem: string;
      /** Hex SHA-256 thumbprint of the certificate's DER encoding. */
      readonly thumbprintSha256: string;
      readonly notAfter: Date;
    };

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?\r?\n-----END \1-----/g;

/**
 * Reads `CLIENT_CERTIFICATE`: PEM text holding one unencrypted RSA private key and its certificate,
 * in either order (as Key Vault hands out a certificate whose policy content type is
 * `application/x-pem-file`). Throws an Error whose message says what is wrong, never the key.
 */
export function parseClientCertificate(text: string, now = new Date()): ClientCredential {
  // App settings may carry the PEM with its line breaks written as `\n`.
  const pem =
    text.includes('-----BEGIN') && !text.includes('\n') ? text.replace(/\\n/g, '\n') : text;
  const blocks = [...pem.matchAll(PEM_BLOCK)].map((match) => ({
    label: match[1] ?? '',
    text: match[0],
  }));
  if (blocks.length === 0) {
    throw new Error(
      /^[A-Za-z0-9+/=\s]+$/.test(text)
        ? 'looks like PKCS#12 (a base64 PFX), which Key Vault hands out unless the certificate policy content type is application/x-pem-file: create the certificate with the PEM content type (see docs/deploy.md)'
        : 'holds no PEM block: give the private key and its certificate in PEM',
    );
  }
  if (blocks.some((block) => block.label === 'ENCRYPTED PRIVATE KEY')) {
    throw new Error(
      'holds an encrypted private key: give it unencrypted (Key Vault keeps it safe)',
    );
  }
  const keys = blocks.filter((block) => /^(RSA |EC )?PRIVATE KEY$/.test(block.label));
  const certificates = blocks.filter((block) => block.label === 'CERTIFICATE');
  if (keys.length !== 1) throw new Error('must hold exactly one private key');
  if (certificates.length === 0) throw new Error('holds no certificate');
  let key: KeyObject;
  try {
    key = createPrivateKey((keys[0] as { text: string }).text);
  } catch {
    throw new Error('holds a private key that cannot be read');
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new Error('must hold an RSA key (Entra verifies client assertions signed with PS256)');
  }
  let leaf: X509Certificate | undefined;
  for (const certificate of certificates) {
    let parsed: X509Certificate;
    try {
      parsed = new X509Certificate(certificate.text);
    } catch {
      throw new Error('holds a certificate that cannot be read');
    }
    if (parsed.checkPrivateKey(key)) leaf = parsed;
  }
  if (leaf === undefined) throw new Error('holds no certificate of its private key');
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now.getTime()) {
    throw new Error(`holds a certificate that expired on ${notAfter.toISOString()}`);
  }
  return {
    kind: 'certificate',
    privateKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certificatePem: leaf.toString(),
    thumbprintSha256: leaf.fingerprint256.replace(/:/g, '').toLowerCase(),
    notAfter,
  };
}
