import type { SSMClient } from "@aws-sdk/client-ssm";
import { LifeboatError, type SecretResolver } from "@lifeboat/core";

/**
 * Secrets: { env: "NAME" } reads the environment; { ssm: "/name" } reads an SSM Parameter Store SecureString
 * (GetParameter with decryption). Errors name the reference, never a value.
 */
export class DefaultSecretResolver implements SecretResolver {
  private ssmClient: SSMClient | undefined;
  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    ssm?: SSMClient,
  ) {
    this.ssmClient = ssm;
  }

  async resolve(ref: { env?: string | undefined; ssm?: string | undefined }, what: string): Promise<string> {
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
    throw new LifeboatError(`${what}: the secret reference names neither env nor ssm`, { exitCode: 2 });
  }
}
