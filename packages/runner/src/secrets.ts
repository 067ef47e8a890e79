import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { LifeboatError, type SecretResolver } from "@lifeboat/core";

type Ref = { env?: string | undefined; ssm?: string | undefined; secretsManager?: string | undefined; key?: string | undefined };

/**
 * Secrets: { env: "NAME" } reads the environment; { ssm: "/name" } reads an SSM Parameter Store SecureString
 * (GetParameter with decryption); { secretsManager: ARN, key? } reads a Secrets Manager secret (GetSecretValue), the
 * whole string or one field of its JSON. Errors name the reference, never a value.
 */
export class DefaultSecretResolver implements SecretResolver {
  private ssmClient: SSMClient | undefined;
  private smClient: SecretsManagerClient | undefined;
  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    ssm?: SSMClient,
    secretsManager?: SecretsManagerClient,
  ) {
    this.ssmClient = ssm;
    this.smClient = secretsManager;
  }

  async resolve(ref: Ref, what: string): Promise<string> {
    if (ref.secretsManager) return this.fromSecretsManager(ref.secretsManager, ref.key, what);
    if (ref.env) {
      const v = this.env[ref.env];
      if (v === undefined || v === "") {
        throw new LifeboatError(`${what}: the environment variable ${ref.env} is not set`, { exitCode: 2, hint: `export ${ref.env}=...` });
      }
      return v;
    }
    if (ref.ssm) {
      // the SSM client loads only when a secret lives there (memory and start-up of everything else)
      const { GetParameterCommand, SSMClient } = await import("@aws-sdk/client-ssm");
      this.ssmClient ??= new SSMClient({});
      try {
        const res = await this.ssmClient.send(new GetParameterCommand({ Name: ref.ssm, WithDecryption: true }));
        const v = res.Parameter?.Value;
        if (!v) throw new LifeboatError(`${what}: the SSM parameter ${ref.ssm} is empty`);
        return v;
      } catch (err) {
        if (err instanceof LifeboatError) throw err;
        const name = (err as Error).name;
        throw new LifeboatError(`${what}: cannot read the SSM parameter ${ref.ssm} (${name})`, {
          hint:
            name === "ParameterNotFound"
              ? `create it: aws ssm put-parameter --type SecureString --name ${ref.ssm} --value ...`
              : "check the AWS credentials and their ssm:GetParameter permission",
        });
      }
    }
    throw new LifeboatError(`${what}: the secret reference names neither env, ssm nor secretsManager`, { exitCode: 2 });
  }

  private async fromSecretsManager(arn: string, key: string | undefined, what: string): Promise<string> {
    // the client loads only when a secret lives there
    const { GetSecretValueCommand, SecretsManagerClient } = await import("@aws-sdk/client-secrets-manager");
    // the secret's own region (its ARN says it), whatever the runner's
    this.smClient ??= new SecretsManagerClient({ region: arn.split(":")[3] });
    let text: string | undefined;
    try {
      text = (await this.smClient.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString;
    } catch (err) {
      const name = (err as Error).name;
      throw new LifeboatError(`${what}: cannot read the Secrets Manager secret ${arn} (${name})`, {
        hint:
          name === "ResourceNotFoundException"
            ? "check the ARN (with its 6-character suffix): aws secretsmanager describe-secret --secret-id <name>"
            : "check the AWS credentials, their secretsmanager:GetSecretValue permission, and kms:Decrypt if the secret has a key of its own",
      });
    }
    if (!text) throw new LifeboatError(`${what}: the Secrets Manager secret ${arn} has no string value`, { hint: "store the secret as a string (a binary secret is not read)" });
    if (key === undefined) return text;
    let fields: unknown;
    try {
      fields = JSON.parse(text);
    } catch {
      // never the value itself: only what it is not
      throw new LifeboatError(`${what}: the Secrets Manager secret ${arn} is not JSON, so it has no field "${key}"`, { exitCode: 2, hint: "remove key to read the whole secret, or store it as JSON" });
    }
    const value = fields && typeof fields === "object" ? (fields as Record<string, unknown>)[key] : undefined;
    if (typeof value !== "string" || !value) {
      const has = fields && typeof fields === "object" ? Object.keys(fields).join(", ") : "";
      throw new LifeboatError(`${what}: the Secrets Manager secret ${arn} has no string field "${key}"${has ? ` (its fields: ${has})` : ""}`, { exitCode: 2, hint: 'RDS-managed secrets keep the password under "password"' });
    }
    return value;
  }
}
