// Package sessions ends the role sessions a group membership enabled, when
// that membership ends.
//
// Removing a user from an IAM group stops new AssumeRole calls, but a role
// session already issued keeps working until it expires (up to the role's
// MaxSessionDuration). So when a managed membership ends, every role the
// group lets its members assume, and that lies under the configured role
// path, gets a Deny for sessions issued before that moment, in one inline
// policy per role that iamjit owns (PolicyName):
//
//   - per user, by aws:SourceIdentity, where the role's trust policy makes
//     every session carry the IAM user name as its source identity;
//   - otherwise role-wide, by aws:TokenIssueTime alone: every older session
//     of the role ends, and those still entitled assume it again.
//
// Which roles: read from IAM (FindRoles): every Allow of sts:AssumeRole in
// the group's inline and attached managed policies, its Resource patterns
// resolved against the roles that exist in every account iamjit manages
// (Revoker.Peers): a role in another managed account is written through
// that account's Revoker. Then the same for each role found: the roles its
// own policies let it assume and whose trust lets it in (Trusts) are
// enabled by the membership too (role chaining), down the chain, each role
// once. Roles outside the path, and role ARNs in accounts iamjit does not
// manage (ForeignRoles), are only reported and not followed.
//
// The protocol is the grants membership protocol applied to roles. The store
// keeps, per role, the set of (user -> revocation time) and a token that
// every write replaces (the item is then dirty). A writer adds its entry,
// reads the item, renders the whole policy from it (Render: entries older
// than MaxSessionDuration deny nothing and are dropped; past IAM's size
// limit it falls back to one role-wide statement), writes it to IAM, and
// clears the dirty mark only if the token is still the one it rendered. If
// the token moved, someone wrote after it: it reads and writes again. So
// the last PutRolePolicy always reflects the last write, and replicas never
// lose each other's statements. A writer that dies leaves the item dirty;
// Repair (the sweeper) finishes it.
//
// PermissionSets does the same for Identity Center: an ended assignment (or
// group membership) adds a Deny to the permission set's inline policy, by
// identitystore:userId, aws:PrincipalAccount and aws:TokenIssueTime, beside
// the customer's own statements, then provisions the permission set to the
// account. Its items use the same protocol plus pending accounts and a
// lease (permissionsets.go says why).
package sessions
