#!/usr/bin/env node
// Signs an Attaché job document for AWS IoT Jobs: builds its manifest (operation, version, target,
// artifact SHA-256 and size, expiry, rollback) and signs it with the job-signing private key.
//
//   node scripts/sign-job.mjs --document unsigned.json --key job-signing.pem \
//     (--thing gw-ward4 | --group ward4) [--expires-in-hours 168] [--rollback] [--label 2026-11] > job.json
//   aws iot create-job --job-id … --targets arn:aws:iot:…:thing/gw-ward4 --document file://job.json
//
// The unsigned document is a job document without `manifest` and `signature` (see
// packages/jobs/README.md). Run `npm run build` first: this uses packages/jobs/dist.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseJobDocument, signJobDocument } from '../packages/jobs/dist/index.js';

const { values } = parseArgs({
  options: {
    document: { type: 'string' },
    key: { type: 'string' },
    thing: { type: 'string' },
    group: { type: 'string' },
    'expires-in-hours': { type: 'string', default: '168' },
    rollback: { type: 'boolean', default: false },
    label: { type: 'string' },
  },
});
const fail = (message) => {
  console.error(`sign-job: ${message}`);
  process.exit(2);
};
if (!values.document || !values.key) fail('give --document FILE and --key PRIVATE.pem');
if (Boolean(values.thing) === Boolean(values.group)) fail('give exactly one of --thing NAME or --group NAME');
const hours = Number(values['expires-in-hours']);
if (!(hours > 0 && hours <= 24 * 366)) fail('--expires-in-hours must be between 0 and 8784');

const unsigned = JSON.parse(readFileSync(values.document, 'utf8'));
const signed = signJobDocument(unsigned, readFileSync(values.key, 'utf8'), {
  target: values.thing ? { thing: values.thing } : { group: values.group },
  expiresAt: new Date(Date.now() + hours * 3_600_000),
  rollback: values.rollback || undefined,
  version: values.label,
});
parseJobDocument(signed); // the gateway's own schema check: refuse to print what it would reject
process.stdout.write(`${JSON.stringify(signed, null, 2)}\n`);
