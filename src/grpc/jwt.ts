/**
 * JWT bearer tokens verified locally with a configured public key (PEM, WORKFLOW_JWT_PUBLIC_KEY_FILE)
 * or key set (JWKS JSON, WORKFLOW_JWKS_FILE): signature, issuer, audience, expiry and not-before
 * with a small clock skew; the role comes from a configurable claim. Only asymmetric algorithms are
 * accepted, so the public key can never be used as an HMAC secret. A refused token's message says
 * why (expired, wrong audience, bad signature, ...) and never echoes the token.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { WorkflowError } from "../engine/errors.js";
import { ROLES, type Caller, type Role } from "./auth.js";

export interface JwtSettings {
  /** PEM public key (SPKI) or certificate. Exactly one of publicKeyFile / jwksFile. */
  publicKeyFile?: string;
  /** JSON Web Key Set file ({"keys": [...]}). */
  jwksFile?: string;
  issuer: string;
  audience: string;
  /** Claim holding the role(s): a string, an array or a space-separated list; dots descend into objects. */
  rolesClaim: string;
}

/** Allowed difference between the server's clock and the issuer's for exp / nbf / iat. */
export const JWT_CLOCK_TOLERANCE_SECONDS = 30;

const ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];

/** Algorithms a key of this type can verify. */
function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case "rsa":
    case "rsa-pss":
      return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === "prime256v1") return ["ES256"];
      if (curve === "secp384r1") return ["ES384"];
      if (curve === "secp521r1") return ["ES512"];
      throw new Error(`EC curve ${curve ?? "(unknown)"} is not supported for JWTs`);
    }
    case "ed25519":
    case "ed448":
      return ["EdDSA"];
    default:
      throw new Error(`a ${key.asymmetricKeyType ?? "symmetric"} key cannot verify JWTs; use an RSA, EC or Ed25519 public key`);
  }
}

/** Reads and checks the key material; throws an Error naming the file and the problem. */
function loadKeys(settings: JwtSettings): { key: KeyObject | JWTVerifyGetKey; algorithms: string[] } {
  if (settings.publicKeyFile) {
    const file = settings.publicKeyFile;
    let pem: string;
    try {
      pem = readFileSync(file, "utf8");
    } catch (err) {
      throw new Error(`cannot read the JWT public key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch {
      throw new Error(`${file} is not a PEM public key or certificate`);
    }
    return { key, algorithms: algorithmsFor(key) };
  }
  const file = settings.jwksFile!;
  let jwks: JSONWebKeySet;
  try {
    jwks = JSON.parse(readFileSync(file, "utf8")) as JSONWebKeySet;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code ? `cannot read the JWKS file ${file}: ${code}` : `${file} is not JSON`);
  }
  if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) throw new Error(`${file} holds no keys (expected {"keys": [...]})`);
  if (jwks.keys.some((k) => k.kty === "oct")) throw new Error(`${file} holds a symmetric (oct) key; only public keys are accepted`);
  return { key: createLocalJWKSet(jwks), algorithms: ASYMMETRIC_ALGORITHMS };
}

function claimAt(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** The role names in a roles claim: a space-separated string or a list of strings (at most 64, each at most 128 characters). */
function namesIn(value: unknown): string[] {
  const names = typeof value === "string" ? value.split(/\s+/) : Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
  return names.filter((n) => n !== "" && n.length <= 128).slice(0, 64);
}

/** The highest role named in the claim (admin > writer > reader), or undefined. */
function roleFrom(value: unknown): Role | undefined {
  const names = namesIn(value);
  let best = -1;
  for (const n of names) best = Math.max(best, (ROLES as readonly string[]).indexOf(n as string));
  return best >= 0 ? ROLES[best] : undefined;
}

const invalid = (why: string) => new WorkflowError("CREDENTIALS_INVALID", `the bearer token was refused: ${why}`);

/** Why jose refused a token, in words a client can act on (never the token or its claims' values). */
function explain(err: unknown, settings: JwtSettings): WorkflowError {
  if (err instanceof errors.JWTExpired) {
    return invalid(`it has expired (its exp is more than ${JWT_CLOCK_TOLERANCE_SECONDS} s in the past); get a new token`);
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case "aud":
        return invalid(`its audience (aud) is not "${settings.audience}", the audience this server accepts`);
      case "iss":
        return invalid(`its issuer (iss) is not "${settings.issuer}", the issuer this server trusts`);
      case "nbf":
        return invalid("it is not valid yet (nbf is in the future)");
      case "iat":
        return invalid("its issue time (iat) is in the future");
      case "exp":
        return invalid("its exp claim is not a number");
      default:
        return invalid(`its ${err.claim} claim is not acceptable (${err.reason})`);
    }
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return invalid("its signature does not verify with this server's keys");
  if (err instanceof errors.JWKSNoMatchingKey) return invalid("no key of this server's key set matches its header (kid / alg)");
  if (err instanceof errors.JOSEAlgNotAllowed) return invalid("it is signed with an algorithm this server's keys do not accept");
  if (err instanceof errors.JWKSMultipleMatchingKeys) return invalid("several keys of this server's key set match its header; set a kid");
  return invalid("it is neither a token this server knows nor a well-formed JWT");
}

/** Verifies JWTs; reload() re-reads the key file (the old keys stay when the new file is bad). */
export class JwtVerifier {
  private keys: ReturnType<typeof loadKeys>;

  constructor(readonly settings: JwtSettings) {
    this.keys = loadKeys(settings);
  }

  reload(): void {
    this.keys = loadKeys(this.settings);
  }

  readonly verify = async (token: string): Promise<Caller> => {
    if (!/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)) throw invalid("it is neither a token this server knows nor a JWT");
    let payload: JWTPayload;
    try {
      const { key, algorithms } = this.keys;
      const options = {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        algorithms,
        clockTolerance: JWT_CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ["exp", "sub"],
      };
      payload =
        typeof key === "function" ? (await jwtVerify(token, key, options)).payload : (await jwtVerify(token, key, options)).payload;
    } catch (err) {
      if (err instanceof errors.JWTClaimValidationFailed && err.reason === "missing") {
        throw invalid(`it has no ${err.claim} claim (this server requires exp and sub)`);
      }
      throw explain(err, this.settings);
    }
    // The subject becomes the actor of every history entry the caller writes: it must be storable text.
    if (typeof payload.sub !== "string" || payload.sub === "" || payload.sub.length > 256 || /[\u0000-\u001f\u007f]/.test(payload.sub)) {
      throw invalid("its sub claim must be 1 to 256 characters without control characters (it is recorded as the actor of each change)");
    }
    const claim = claimAt(payload, this.settings.rolesClaim);
    const role = roleFrom(claim);
    if (!role) {
      throw new WorkflowError(
        "PERMISSION_DENIED",
        `the token's ${this.settings.rolesClaim} claim names none of the roles reader, writer or admin`,
        { metadata: { roles_claim: this.settings.rolesClaim } },
      );
    }
    return { subject: payload.sub!, role, roles: Object.freeze(namesIn(claim)), via: "jwt" };
  };
}
