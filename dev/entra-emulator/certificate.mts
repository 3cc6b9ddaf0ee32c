import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generate } from 'selfsigned';

/** A local CA and a server certificate it signed, as PEM. */
export interface TlsMaterial {
  caCertPem: string;
  /** The CA certificate's file: what NODE_EXTRA_CA_CERTS (or a browser) should trust. */
  caCertPath: string;
  certPem: string;
  keyPem: string;
}

const day = 24 * 60 * 60 * 1000;

/**
 * Loads the CA and server certificate kept in `dir`, or creates them. A CA rather than one
 * self-signed certificate, so that whoever trusts the CA keeps trusting the emulator when the
 * server certificate is reissued for other host names. Keys are written readable by the owner only.
 */
export async function loadOrCreateTlsMaterial(
  dir: string,
  hostNames: readonly string[],
): Promise<TlsMaterial> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = (name: string) => join(dir, name);

  let ca = await readPair(path('ca.pem'), path('ca-key.pem'));
  if (!ca || !validForAnotherDay(ca.cert)) {
    ca = await generateCa();
    await writePair(path('ca.pem'), path('ca-key.pem'), ca);
  }

  let server = await readPair(path('server.pem'), path('server-key.pem'));
  if (!server || !validForAnotherDay(server.cert) || !fits(server.cert, ca.cert, hostNames)) {
    server = await generateServerCertificate(ca, hostNames);
    await writePair(path('server.pem'), path('server-key.pem'), server);
  }

  return {
    caCertPem: ca.cert,
    caCertPath: path('ca.pem'),
    certPem: server.cert,
    keyPem: server.key,
  };
}

interface Pair {
  cert: string;
  key: string;
}

async function readPair(certPath: string, keyPath: string): Promise<Pair | undefined> {
  try {
    return { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8') };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function writePair(certPath: string, keyPath: string, pair: Pair): Promise<void> {
  await writeFile(keyPath, pair.key, { mode: 0o600 });
  await writeFile(certPath, pair.cert);
}

function validForAnotherDay(pem: string): boolean {
  return new Date(new X509Certificate(pem).validTo).getTime() > Date.now() + day;
}

function fits(serverPem: string, caPem: string, hostNames: readonly string[]): boolean {
  const server = new X509Certificate(serverPem);
  return (
    server.checkIssued(new X509Certificate(caPem)) &&
    hostNames.every((name) =>
      isIP(name) ? server.checkIP(name) !== undefined : server.checkHost(name) !== undefined,
    )
  );
}

async function generateCa(): Promise<Pair> {
  const pems = await generate(
    [{ name: 'commonName', value: 'Entra External ID emulator local CA' }],
    {
      keyType: 'ec',
      algorithm: 'sha256',
      notAfterDate: new Date(Date.now() + 5 * 365 * day),
      extensions: [
        { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ],
    },
  );
  return { cert: pems.cert, key: pems.private };
}

async function generateServerCertificate(ca: Pair, hostNames: readonly string[]): Promise<Pair> {
  const pems = await generate([{ name: 'commonName', value: hostNames[0] ?? 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    // Browsers refuse server certificates valid for more than 398 days.
    notAfterDate: new Date(Date.now() + 365 * day),
    ca: { cert: ca.cert, key: ca.key },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: hostNames.map((name) =>
          isIP(name) ? { type: 7 as const, ip: name } : { type: 2 as const, value: name },
        ),
      },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
