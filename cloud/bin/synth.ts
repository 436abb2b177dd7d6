// `npm run synth` (or `cdk synth`): synthesizes every region's stack offline, with the cdk-nag checks.
import { buildApp, loadFleetConfig } from '../lib/app.js';

const started = performance.now();
const assembly = buildApp(loadFleetConfig(), { outdir: process.env.CDK_OUTDIR ?? 'cdk.out' }).synth();
const seconds = ((performance.now() - started) / 1000).toFixed(1);
for (const stack of assembly.stacks) console.log(`${stack.stackName}: ${stack.templateFile}`);
console.log(
  `synthesized ${assembly.stacks.length} stack(s) in ${seconds} s into ${assembly.directory}; cdk-nag: no unacknowledged finding`,
);
