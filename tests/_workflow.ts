/**
 * Runs a GitHub Actions job locally, for tests: the `run:` steps in order
 * with bash and the `GITHUB_*` variables, `${{ }}` expressions from a small
 * context, `if:` with success()/failure()/always(), and each `uses:` step
 * replaced by its local equivalent (checkout and setup-deno: nothing to do
 * in a checkout with Deno on PATH; upload-artifact: a callback).
 *
 * @module
 */

import { parse } from "yaml";

/** A step as written in the workflow. */
interface Step {
  name?: string;
  id?: string;
  if?: string;
  uses?: string;
  run?: string;
  with?: Record<string, string | number | boolean>;
  env?: Record<string, string>;
}

/** What the job sees. */
export interface JobContext {
  /** Repository secrets (missing ones are empty, as on GitHub). */
  readonly secrets: Record<string, string>;
  /** `github.token`. */
  readonly token: string;
  /** The checkout to run in. */
  readonly cwd: string;
  /** Environment of the runner (PATH with deno, HOME, GITHUB_* …). */
  readonly env: Record<string, string>;
  /** Stands in for actions/upload-artifact. */
  upload(
    name: string,
    path: string,
    options: Record<string, string>,
  ): Promise<void>;
}

/** The outcome of one step. */
export interface StepResult {
  readonly name: string;
  readonly status: "success" | "failure" | "skipped";
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs one job of a workflow file.
 *
 * @param workflowPath The workflow YAML.
 * @param job The job id.
 * @param ctx The context.
 * @returns Each step's outcome, and whether the job failed.
 */
export async function runJob(
  workflowPath: string,
  job: string,
  ctx: JobContext,
): Promise<{ steps: StepResult[]; failed: boolean }> {
  const workflow = parse(await Deno.readTextFile(workflowPath)) as {
    env?: Record<string, string>;
    jobs: Record<string, { env?: Record<string, string>; steps: Step[] }>;
  };
  const spec = workflow.jobs[job];
  if (!spec) throw new Error(`no job ${job}`);
  const outputs: Record<string, Record<string, string>> = {};
  const evaluate = (text: string): string =>
    text.replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_m, expr: string) => {
      let m: RegExpExecArray | null;
      if ((m = /^secrets\.(\w+)$/.exec(expr))) return ctx.secrets[m[1]!] ?? "";
      if (expr === "github.token") return ctx.token;
      if ((m = /^steps\.([\w-]+)\.outputs\.([\w-]+)$/.exec(expr))) {
        return outputs[m[1]!]?.[m[2]!] ?? "";
      }
      throw new Error(`the local runner cannot evaluate \${{ ${expr} }}`);
    });
  const envOf = (...maps: (Record<string, string> | undefined)[]) => {
    const out: Record<string, string> = {};
    for (const map of maps) {
      for (const [k, v] of Object.entries(map ?? {})) {
        out[k] = evaluate(String(v));
      }
    }
    return out;
  };
  const jobEnv = envOf(workflow.env, spec.env);
  const results: StepResult[] = [];
  let failed = false;
  for (const [i, step] of spec.steps.entries()) {
    const name = step.name ?? step.uses ?? step.run ?? `step ${i + 1}`;
    const condition = (step.if ?? "success()").trim();
    const runs = condition === "always()" ||
      (condition === "failure()"
        ? failed
        : condition === "success()" && !failed);
    if (!["always()", "failure()", "success()"].includes(condition)) {
      throw new Error(`unsupported if: ${condition}`);
    }
    if (!runs) {
      results.push({ name, status: "skipped", stdout: "", stderr: "" });
      continue;
    }
    if (step.uses) {
      const action = step.uses.split("@")[0];
      try {
        if (action === "actions/upload-artifact") {
          const w = Object.fromEntries(
            Object.entries(step.with ?? {}).map((
              [k, v],
            ) => [k, evaluate(String(v))]),
          );
          await ctx.upload(w.name!, w.path!, w);
        } else if (
          action !== "actions/checkout" && action !== "denoland/setup-deno"
        ) {
          throw new Error(`no local equivalent for ${step.uses}`);
        }
        results.push({ name, status: "success", stdout: "", stderr: "" });
      } catch (error) {
        failed = true;
        results.push({
          name,
          status: "failure",
          stdout: "",
          stderr: String(error),
        });
      }
      continue;
    }
    const outputFile = await Deno.makeTempFile({
      prefix: "github-output-",
      dir: ctx.cwd,
    });
    const script = await Deno.makeTempFile({
      prefix: "step-",
      suffix: ".sh",
      dir: ctx.cwd,
    });
    await Deno.writeTextFile(script, evaluate(step.run!));
    const output = await new Deno.Command("bash", {
      args: ["-e", script],
      cwd: ctx.cwd,
      clearEnv: true,
      env: {
        ...ctx.env,
        ...jobEnv,
        ...envOf(step.env),
        GITHUB_OUTPUT: outputFile,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    if (step.id) {
      outputs[step.id] = Object.fromEntries(
        (await Deno.readTextFile(outputFile)).split("\n").filter((l) =>
          l.includes("=")
        ).map((l) => {
          const at = l.indexOf("=");
          return [l.slice(0, at), l.slice(at + 1)];
        }),
      );
    }
    await Deno.remove(outputFile);
    await Deno.remove(script);
    if (output.code !== 0) failed = true;
    results.push({
      name,
      status: output.code === 0 ? "success" : "failure",
      stdout,
      stderr,
    });
  }
  return { steps: results, failed };
}
