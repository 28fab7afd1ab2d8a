import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A certificate (or key) both as a file, for the registry's config, and as PEM text, for Node clients. */
export interface PemFile {
  file: string;
  pem: string;
}

/** A throwaway certificate authority: its own key and self-signed certificate. */
export interface TestCaRoot {
  dir: string;
  cert: PemFile;
  key: PemFile;
}

/** Everything a TLS registry with token auth needs, all made by the openssl CLI under one folder. */
export interface TestCa extends TestCaRoot {
  /** Server certificate for `IP:127.0.0.1, DNS:localhost`, signed by the CA. */
  serverCert: PemFile;
  serverKey: PemFile;
  /** Self-signed certificate of the JWT signing key: the registry's `rootcertbundle`. */
  signingCert: PemFile;
  /** RSA key the token server signs JWTs with (RS256). */
  signingKey: PemFile;
}

// Our own config keeps openssl away from the system openssl.cnf, whose default extensions differ
// between distributions (and would clash with ours).
const opensslConfig = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[signer_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
`;

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

const pemFile = (file: string): PemFile => ({ file, pem: readFileSync(file, 'utf8') });

// A random serial per certificate: two CAs made in the same second must not issue look-alike certificates.
const serial = () => `0x${randomBytes(8).toString('hex')}`;

function writeConfig(dir: string): string {
  const file = path.join(dir, 'openssl.cnf');
  writeFileSync(file, opensslConfig);
  return file;
}

/**
 * A new CA (EC P-256) in `dir`. Every call makes an unrelated one, so a second call is how a test gets
 * "the wrong CA" to prove certificate checks really happen.
 */
export function createCaRoot(dir: string, name = 'model-oci test CA'): TestCaRoot {
  mkdirSync(dir, { recursive: true });
  const config = writeConfig(dir);
  // Name clashes between CAs would only confuse a failing test's output; the random suffix keeps them apart.
  const subject = `/CN=${name} ${randomBytes(4).toString('hex')}`;
  openssl(dir, [
    ...['req', '-x509', '-config', config, '-extensions', 'ca_ext', '-newkey', 'ec'],
    ...['-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt'],
    ...['-days', '3650', '-subj', subject, '-set_serial', serial()],
  ]);
  return { dir, cert: pemFile(path.join(dir, 'ca.crt')), key: pemFile(path.join(dir, 'ca.key')) };
}

function createServerCert(ca: TestCaRoot, config: string): Pick<TestCa, 'serverCert' | 'serverKey'> {
  openssl(ca.dir, [
    ...['req', '-new', '-config', config, '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'],
    ...['-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'],
  ]);
  openssl(ca.dir, [
    ...['x509', '-req', '-in', 'server.csr', '-CA', ca.cert.file, '-CAkey', ca.key.file],
    ...['-extfile', config, '-extensions', 'server_ext', '-days', '825', '-set_serial', serial()],
    ...['-out', 'server.crt'],
  ]);
  return {
    serverCert: pemFile(path.join(ca.dir, 'server.crt')),
    serverKey: pemFile(path.join(ca.dir, 'server.key')),
  };
}

// The registry trusts the public keys of the certificates in its rootcertbundle and finds the one a JWT
// names by its `kid`; a self-signed certificate is all that takes.
function createSigningCert(dir: string, config: string): Pick<TestCa, 'signingCert' | 'signingKey'> {
  openssl(dir, [
    ...['req', '-x509', '-config', config, '-extensions', 'signer_ext', '-newkey', 'rsa:2048', '-nodes'],
    ...[
      '-keyout',
      'signing.key',
      '-out',
      'signing.crt',
      '-days',
      '3650',
      '-subj',
      '/CN=model-oci test token signer',
    ],
    ...['-set_serial', serial()],
  ]);
  return {
    signingCert: pemFile(path.join(dir, 'signing.crt')),
    signingKey: pemFile(path.join(dir, 'signing.key')),
  };
}

/** A CA, a server certificate it signed for 127.0.0.1/localhost, and a JWT signing key with its certificate. */
export function createTestCa(dir: string, name?: string): TestCa {
  const root = createCaRoot(dir, name);
  const config = path.join(dir, 'openssl.cnf');
  return { ...root, ...createServerCert(root, config), ...createSigningCert(dir, config) };
}
