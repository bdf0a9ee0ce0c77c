// Evaluates requests against a resource policy with @cloud-copilot/iam-simulate
// (installed by `make simulate-deps` in sessions/testdata/simulate; a test tool,
// never in the binary or the image). Reads on stdin
//   {"simulator": <dir of its package.json>, "cases": [{"name", "policy",
//    "action", "resource", "principal", "context": {key: value}}]}
// and prints [{"name", "result"}]: Allowed, ExplicitlyDenied,
// ImplicitlyDenied, or "error: ...".
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

let input = ''
for await (const chunk of process.stdin) input += chunk
const { simulator, cases } = JSON.parse(input)
const require = createRequire(simulator + '/package.json')
const { runSimulation } = await import(pathToFileURL(require.resolve('@cloud-copilot/iam-simulate')).href)
const out = []
for (const c of cases) {
  const sim = {
    identityPolicies: [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: JSON.parse(c.policy),
    request: {
      action: c.action,
      principal: c.principal,
      resource: { accountId: c.resource.split(':')[4], resource: c.resource },
      contextVariables: c.context,
    },
  }
  const r = await runSimulation(sim, {})
  out.push({ name: c.name, result: r.overallResult ?? 'error: ' + JSON.stringify(r.errors ?? r) })
}
process.stdout.write(JSON.stringify(out))
