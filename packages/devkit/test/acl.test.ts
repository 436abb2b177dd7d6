import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  aclRules,
  type FleetIotPolicies,
  type IotPolicyStatement,
  loadIotPolicies,
  mosquittoAcl,
} from '@attache/devkit';
import t from 'tap';

const thing = ['$', '{iot:Connection.Thing.ThingName}'].join('');
const doc = (...Statement: IotPolicyStatement[]) => ({ Version: '2012-10-17', Statement });
const allow = (Action: string | string[], Resource: string[]): IotPolicyStatement => ({
  Effect: 'Allow',
  Action,
  Resource,
});

t.test('the repository policies translate: the gateway by thing name, the claim by template', async (t) => {
  const acl = mosquittoAcl({ templateName: 'tpl-1', claimUsers: ['claim-a'], serviceUsers: ['svc'] });
  t.match(acl, /^pattern write dt\/attache\/%u\/telemetry$/m);
  t.match(acl, /^pattern write \$aws\/things\/%u\/jobs\/\+\/update$/m, 'a job id "*" is one level');
  t.match(acl, /^pattern read \$aws\/things\/%u\/shadow\/name\/attache\/update\/delta$/m);
  t.match(acl, /^user claim-a\n(topic deny .+\n)+topic write \$aws\/certificates\/create-from-csr\/json$/m);
  t.match(acl, /^topic deny dt\/attache\/\+\/telemetry$/m, 'the claim is denied gateway topics');
  t.match(acl, /^topic read \$aws\/provisioning-templates\/tpl-1\/provision\/json\/accepted$/m);
  t.match(acl, /^user svc\ntopic readwrite #\ntopic readwrite \$aws\/#$/m);
  t.notMatch(acl, /\$\{|\*|\{templateName\}/, 'no policy syntax is left');
});

t.test('a policy file elsewhere can be read', async (t) => {
  const file = join(t.testdir(), 'policies.json');
  const policies: FleetIotPolicies = {
    gateway: doc(allow('iot:Publish', [`topic/a/${thing}`])),
    claim: doc(allow('iot:Publish', ['topic/b'])),
  };
  writeFileSync(file, JSON.stringify({ description: 'x', ...policies }));
  t.same(loadIotPolicies(file).gateway, policies.gateway);
});

t.test('a role alias grant is not MQTT: the broker has nothing to enforce for it', async (t) => {
  t.same(
    aclRules(
      doc(allow('iot:AssumeRoleWithCertificate', ['rolealias/files']), allow('iot:Publish', ['topic/a'])),
      'tpl',
    ),
    ['write a'],
  );
});

t.test('what mosquitto cannot enforce is refused, never silently dropped', async (t) => {
  const refuse = (statement: IotPolicyStatement, what: RegExp) =>
    t.throws(() => aclRules(doc(statement), 'tpl'), { name: 'TypeError', message: what });
  refuse({ ...allow('iot:Publish', ['topic/a']), Effect: 'Deny' }, /Effect "Deny"/);
  refuse(allow('iot:UpdateThingShadow', ['thing/a']), /unsupported action/);
  refuse(
    { ...allow('iot:Publish', ['topic/a']), Condition: { Bool: { x: 'true' } } },
    /condition on iot:Publish/,
  );
  refuse(
    { ...allow('iot:Connect', ['client/a']), Condition: { Bool: { x: 'true' } } },
    /unsupported condition/,
  );
  refuse(allow('iot:Subscribe', ['topic/a']), /expected topicfilter\//);
  refuse(allow('iot:Publish', ['topic/a/b*']), /whole topic level/);
  refuse(allow('iot:Publish', [`topic/a/x-${thing}`]), /whole topic level/);
  refuse(allow('iot:Publish', ['topic/a/#']), /whole topic level/);
  refuse(allow('iot:Subscribe', ['topicfilter/a']), /unpaired: a/);
  refuse(allow('iot:Receive', ['topic/a']), /unpaired: a/);
  t.same(aclRules(doc(allow(['iot:Connect'], [`client/${thing}`])), 'tpl'), [], 'Connect adds no line');
  const clientId = ['$', '{iot:ClientId}'].join('');
  t.same(aclRules(doc(allow('iot:Publish', [`topic/c/${clientId}`])), 'tpl'), ['write c/%c']);
  const policies = loadIotPolicies();
  t.throws(
    () => mosquittoAcl({ policies: { ...policies, claim: doc(allow('iot:Publish', [`topic/a/${thing}`])) } }),
    /claim policy cannot use policy variables/,
  );
});
