// Evaluates requests against identity policies with @cloud-copilot/iam-simulate
// (a test tool: never in the binary or the image). Reads on stdin
//   {"cases": [{"name", "policies": [<policy document>...], "action",
//               "resource", "principal", "context": {key: value}}]}
// and prints [{"name", "result"}] where result is the simulator's overall
// decision (Allowed, ExplicitlyDenied, ImplicitlyDenied) or "error: ...".
import { runSimulation } from '@cloud-copilot/iam-simulate'

let input = ''
for await (const chunk of process.stdin) input += chunk
const { cases } = JSON.parse(input)
const out = []
for (const c of cases) {
  const sim = {
    identityPolicies: c.policies.map((p, i) => ({ name: `p${i}`, policy: JSON.parse(p) })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    request: {
      action: c.action,
      principal: c.principal,
      resource: { accountId: c.principal.split(':')[4], resource: c.resource },
      contextVariables: c.context,
    },
  }
  const r = await runSimulation(sim, {})
  out.push({ name: c.name, result: r.overallResult ?? 'error: ' + JSON.stringify(r.errors ?? r) })
}
process.stdout.write(JSON.stringify(out))
