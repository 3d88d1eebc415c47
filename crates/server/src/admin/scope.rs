//! The scope rules of the admin API: what a [`Caller`] may see and do, as methods on it, in one
//! place, unit-tested here. Handlers fetch the object, then ask the caller.
//!
//! Two answers, never mixed up:
//!
//! - an object outside the caller's read scope answers 404 `not_found`, word for word as a
//!   missing id would, so no caller can probe another tenant's ids (a parent named in a body,
//!   such as the `team_id` of a new user, answers 404 with that field as `param`);
//! - an action the caller's role may not do on an object it sees answers 403 `forbidden`.
//!
//! Read scope: a gateway admin sees everything; an org admin its organization and every team,
//! user and key in it; a team admin, member or viewer its organization (the organization
//! itself), its team, and the team's users and keys. What each role may change is the table in
//! `docs/admin-api.md`. Two rules hold throughout: nobody gives a role above its own, and
//! nobody but a gateway admin acts on a user, or on a user's keys, whose role is above its own
//! (a key is its user's identity: whoever makes or rotates it gets the secret).
//!
//! Quotas (limits and budgets) are set by the level above the object: an organization's by a
//! gateway admin only (its org admin may rename it, not widen what it may use), a team's by an
//! org admin or above, a user's by a team admin or above. A key's by whoever may change the key,
//! a member its own: every scope of a request applies at once, so a key's quota only narrows
//! what its user, team and organization allow.

use portcullis_store::{Team, User};
use portcullis_types::Role;

use super::{AdminError, Caller, Result};

/// The organization and team a list is limited to: the caller's scope forced into the filters
/// it asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ListScope {
    pub org_id: Option<String>,
    pub team_id: Option<String>,
}

impl Caller {
    fn is_gateway_admin(&self) -> bool {
        self.role == Role::GatewayAdmin
    }

    /// Only a gateway admin passes (for actions on the gateway as a whole: organizations,
    /// provider credentials).
    pub(crate) fn require_gateway_admin(&self) -> Result<()> {
        self.at_least(Role::GatewayAdmin, "do this")
    }

    /// 403 unless the caller's role is `role` or above.
    fn at_least(&self, role: Role, action: &str) -> Result<()> {
        let or_above = if role == Role::GatewayAdmin {
            ""
        } else {
            " or above"
        };
        if self.role >= role {
            Ok(())
        } else {
            Err(AdminError::forbidden(format!(
                "only the role {role}{or_above} may {action}; this caller's role is {}",
                self.role
            )))
        }
    }

    fn sees_org(&self, org_id: &str) -> bool {
        self.is_gateway_admin() || self.org_id.as_deref() == Some(org_id)
    }

    fn sees_team(&self, team: &Team) -> bool {
        match self.role {
            Role::GatewayAdmin => true,
            Role::OrgAdmin => self.sees_org(&team.org_id),
            Role::TeamAdmin | Role::Member | Role::Viewer => {
                self.sees_org(&team.org_id) && self.team_id.as_deref() == Some(team.id.as_str())
            }
        }
    }

    pub(crate) fn create_org(&self) -> Result<()> {
        self.require_gateway_admin()
    }

    pub(crate) fn read_org(&self, org_id: &str) -> Result<()> {
        if self.sees_org(org_id) {
            Ok(())
        } else {
            Err(AdminError::not_found("organization"))
        }
    }

    pub(crate) fn update_org(&self, org_id: &str) -> Result<()> {
        self.read_org(org_id)?;
        self.at_least(Role::OrgAdmin, "change an organization")
    }

    pub(crate) fn delete_org(&self, org_id: &str) -> Result<()> {
        self.read_org(org_id)?;
        self.require_gateway_admin()
    }

    /// Creating a team in the organization `org_id` (named by the body's `org_id`).
    pub(crate) fn create_team(&self, org_id: &str) -> Result<()> {
        if !self.sees_org(org_id) {
            return Err(AdminError::missing_parent("organization", "org_id"));
        }
        self.at_least(Role::OrgAdmin, "create a team")
    }

    pub(crate) fn read_team(&self, team: &Team) -> Result<()> {
        if self.sees_team(team) {
            Ok(())
        } else {
            Err(AdminError::not_found("team"))
        }
    }

    /// Setting or removing the quotas of an organization (creating one is a gateway admin's
    /// already).
    pub(crate) fn set_org_quotas(&self, org_id: &str) -> Result<()> {
        self.read_org(org_id)?;
        self.at_least(
            Role::GatewayAdmin,
            "set an organization's quotas (limits and budgets)",
        )
    }

    /// Setting or removing the quotas of a team of the organization `org_id`, new or existing.
    pub(crate) fn set_team_quotas(&self, org_id: &str) -> Result<()> {
        self.read_org(org_id)?;
        self.at_least(Role::OrgAdmin, "set a team's quotas (limits and budgets)")
    }

    /// Setting or removing the quotas of a user of `team` whose role is (or, for a new user,
    /// will be) `role`.
    pub(crate) fn set_user_quotas(&self, team: &Team, role: Role) -> Result<()> {
        self.read_user(team)?;
        self.at_least(Role::TeamAdmin, "set a user's quotas (limits and budgets)")?;
        if self.is_gateway_admin() || role <= self.role {
            Ok(())
        } else {
            Err(AdminError::forbidden(format!(
                "the user's role ({role}) is above this caller's ({}): only a gateway_admin may \
                 set its quotas (limits and budgets)",
                self.role
            )))
        }
    }

    /// Setting or removing the quotas of a key of `team` that belongs to `owner`, new or
    /// existing: whoever may make or change the key.
    pub(crate) fn set_key_quotas(&self, team: &Team, owner: Option<&User>) -> Result<()> {
        self.read_key(team)?;
        self.may_act_on_key(owner, "set the quotas (limits and budgets) of")
    }

    /// Renaming or deleting a team.
    pub(crate) fn manage_team(&self, team: &Team) -> Result<()> {
        self.read_team(team)?;
        self.at_least(Role::OrgAdmin, "change or delete a team")
    }

    /// Creating a user with `role` in `team` (named by the body's `team_id`).
    pub(crate) fn create_user(&self, team: &Team, role: Role) -> Result<()> {
        if !self.sees_team(team) {
            return Err(AdminError::missing_parent("team", "team_id"));
        }
        self.at_least(Role::TeamAdmin, "create a user")?;
        self.grant_role(role)
    }

    /// Reading a user of `team`.
    pub(crate) fn read_user(&self, team: &Team) -> Result<()> {
        if self.sees_team(team) {
            Ok(())
        } else {
            Err(AdminError::not_found("user"))
        }
    }

    /// Changing or deleting `user`, a member of `team`.
    pub(crate) fn manage_user(&self, team: &Team, user: &User) -> Result<()> {
        self.read_user(team)?;
        self.at_least(Role::TeamAdmin, "change or delete a user")?;
        self.outranks_or_equals(user, "change or delete it")
    }

    /// Giving a user `role` (creating or changing it): at most the caller's own role, so only a
    /// gateway admin makes gateway admins.
    pub(crate) fn grant_role(&self, role: Role) -> Result<()> {
        if role <= self.role {
            Ok(())
        } else {
            Err(AdminError::forbidden(format!(
                "the role {role} is above this caller's ({}): a role given must be at most the \
                 caller's own",
                self.role
            )))
        }
    }

    fn outranks_or_equals(&self, user: &User, action: &str) -> Result<()> {
        if self.is_gateway_admin() || user.role <= self.role {
            Ok(())
        } else {
            Err(AdminError::forbidden(format!(
                "the user's role ({}) is above this caller's ({}): only a gateway_admin may \
                 {action}",
                user.role, self.role
            )))
        }
    }

    /// The user a new key is for: the one asked for, or, when a member asks for none, itself.
    pub(crate) fn key_owner(&self, asked: Option<String>) -> Option<String> {
        match (asked, self.role) {
            (None, Role::Member) => self.user_id.clone(),
            (asked, _) => asked,
        }
    }

    /// Creating a key in `team` (named by the body's `team_id`) for `owner` (already known to
    /// be a member of `team`), or for no user.
    pub(crate) fn create_key(&self, team: &Team, owner: Option<&User>) -> Result<()> {
        if !self.sees_team(team) {
            return Err(AdminError::missing_parent("team", "team_id"));
        }
        self.may_act_on_key(owner, "create")
    }

    /// Reading a key of `team`.
    pub(crate) fn read_key(&self, team: &Team) -> Result<()> {
        if self.sees_team(team) {
            Ok(())
        } else {
            Err(AdminError::not_found("key"))
        }
    }

    /// Changing, revoking, rotating or deleting a key of `team` that belongs to `owner`.
    pub(crate) fn manage_key(&self, team: &Team, owner: Option<&User>) -> Result<()> {
        self.read_key(team)?;
        self.may_act_on_key(owner, "change")
    }

    fn may_act_on_key(&self, owner: Option<&User>, verb: &str) -> Result<()> {
        match self.role {
            Role::Viewer => Err(AdminError::forbidden(format!(
                "the role viewer may not {verb} keys"
            ))),
            Role::Member => match (owner, &self.user_id) {
                (Some(owner), Some(me)) if &owner.id == me => Ok(()),
                _ => Err(AdminError::forbidden(format!(
                    "the role member may only {verb} its own keys"
                ))),
            },
            Role::TeamAdmin | Role::OrgAdmin | Role::GatewayAdmin => match owner {
                Some(owner) => self.outranks_or_equals(owner, &format!("{verb} its keys")),
                None => Ok(()),
            },
        }
    }

    /// The filters of a list of teams, users or keys with the caller's scope forced into them:
    /// an org admin's organization, a team-bound role's organization and team. `None` when the
    /// filters asked for lie outside the scope: the answer is then an empty page.
    pub(crate) fn list_scope(
        &self,
        org_id: Option<String>,
        team_id: Option<String>,
    ) -> Option<ListScope> {
        /// The caller's binding, unless `asked` is another one.
        fn narrow(bound: Option<&String>, asked: Option<String>) -> Option<Option<String>> {
            let bound = bound?;
            match asked {
                Some(asked) if &asked != bound => None,
                _ => Some(Some(bound.clone())),
            }
        }
        match self.role {
            Role::GatewayAdmin => Some(ListScope { org_id, team_id }),
            Role::OrgAdmin => Some(ListScope {
                org_id: narrow(self.org_id.as_ref(), org_id)?,
                team_id,
            }),
            Role::TeamAdmin | Role::Member | Role::Viewer => Some(ListScope {
                org_id: narrow(self.org_id.as_ref(), org_id)?,
                team_id: narrow(self.team_id.as_ref(), team_id)?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use axum::http::StatusCode;

    use super::*;

    /// A caller of `role` bound to org `a` and team `a1` (a gateway admin to nothing), as user
    /// `me`.
    fn caller(role: Role) -> Caller {
        let bound = role != Role::GatewayAdmin;
        Caller {
            role,
            org_id: bound.then(|| "a".to_owned()),
            team_id: (bound && role != Role::OrgAdmin).then(|| "a1".to_owned()),
            user_id: bound.then(|| "me".to_owned()),
            subject: "test".into(),
        }
    }

    fn team(org: &str, id: &str) -> Team {
        let t = portcullis_store::now();
        Team {
            id: id.into(),
            org_id: org.into(),
            name: id.into(),
            limits: Default::default(),
            budgets: vec![],
            created_at: t,
            updated_at: t,
        }
    }

    fn user(id: &str, team: &str, role: Role) -> User {
        let t = portcullis_store::now();
        User {
            id: id.into(),
            team_id: team.into(),
            name: id.into(),
            email: None,
            role,
            limits: Default::default(),
            budgets: vec![],
            created_at: t,
            updated_at: t,
        }
    }

    /// 200 for allowed, else the error's status.
    fn code(r: Result<()>) -> u16 {
        r.map_or_else(|e| e.status().as_u16(), |()| 200)
    }

    use Role::{GatewayAdmin as G, Member as M, OrgAdmin as O, TeamAdmin as T, Viewer as V};

    /// Every rule, for every role (in the order G, O, T, M, V), on objects of the caller's own
    /// team `a1`, a sibling team `a2` of its organization and team `b1` of another
    /// organization `b`.
    #[test]
    #[rustfmt::skip]
    fn every_rule_for_every_role() {
        let (a1, a2, b1) = (team("a", "a1"), team("a", "a2"), team("b", "b1"));
        let me = user("me", "a1", M);
        let peer = user("peer", "a1", M);
        let a1_admin = user("boss", "a1", T);
        let a1_org_admin = user("big", "a1", O);
        type Check<'a> = Box<dyn Fn(&Caller) -> Result<()> + 'a>;
        let rules: Vec<(&str, Check, [u16; 5])> = vec![
            ("create org", Box::new(|c| c.create_org()), [200, 403, 403, 403, 403]),
            ("read own org", Box::new(|c| c.read_org("a")), [200, 200, 200, 200, 200]),
            ("read other org", Box::new(|c| c.read_org("b")), [200, 404, 404, 404, 404]),
            ("update own org", Box::new(|c| c.update_org("a")), [200, 200, 403, 403, 403]),
            ("update other org", Box::new(|c| c.update_org("b")), [200, 404, 404, 404, 404]),
            ("delete own org", Box::new(|c| c.delete_org("a")), [200, 403, 403, 403, 403]),
            ("delete other org", Box::new(|c| c.delete_org("b")), [200, 404, 404, 404, 404]),
            ("team in own org", Box::new(|c| c.create_team("a")), [200, 200, 403, 403, 403]),
            ("team in other org", Box::new(|c| c.create_team("b")), [200, 404, 404, 404, 404]),
            ("read own team", Box::new(|c| c.read_team(&a1)), [200, 200, 200, 200, 200]),
            ("read sibling team", Box::new(|c| c.read_team(&a2)), [200, 200, 404, 404, 404]),
            ("read other org's team", Box::new(|c| c.read_team(&b1)), [200, 404, 404, 404, 404]),
            ("manage own team", Box::new(|c| c.manage_team(&a1)), [200, 200, 403, 403, 403]),
            ("manage sibling team", Box::new(|c| c.manage_team(&a2)), [200, 200, 404, 404, 404]),
            ("manage other team", Box::new(|c| c.manage_team(&b1)), [200, 404, 404, 404, 404]),
            ("member in own team", Box::new(|c| c.create_user(&a1, M)), [200, 200, 200, 403, 403]),
            ("team admin in own team", Box::new(|c| c.create_user(&a1, T)), [200, 200, 200, 403, 403]),
            ("org admin in own team", Box::new(|c| c.create_user(&a1, O)), [200, 200, 403, 403, 403]),
            ("gateway admin", Box::new(|c| c.create_user(&a1, G)), [200, 403, 403, 403, 403]),
            ("member in sibling team", Box::new(|c| c.create_user(&a2, M)), [200, 200, 404, 404, 404]),
            ("member in other org", Box::new(|c| c.create_user(&b1, V)), [200, 404, 404, 404, 404]),
            ("read user of own team", Box::new(|c| c.read_user(&a1)), [200, 200, 200, 200, 200]),
            ("read user of sibling", Box::new(|c| c.read_user(&a2)), [200, 200, 404, 404, 404]),
            ("read user of other org", Box::new(|c| c.read_user(&b1)), [200, 404, 404, 404, 404]),
            ("manage a member", Box::new(|c| c.manage_user(&a1, &peer)), [200, 200, 200, 403, 403]),
            ("manage a team admin", Box::new(|c| c.manage_user(&a1, &a1_admin)), [200, 200, 200, 403, 403]),
            ("manage an org admin", Box::new(|c| c.manage_user(&a1, &a1_org_admin)), [200, 200, 403, 403, 403]),
            ("manage sibling's user", Box::new(|c| c.manage_user(&a2, &user("x", "a2", V))), [200, 200, 404, 404, 404]),
            ("manage other org's user", Box::new(|c| c.manage_user(&b1, &user("x", "b1", V))), [200, 404, 404, 404, 404]),
            ("grant viewer", Box::new(|c| c.grant_role(V)), [200, 200, 200, 200, 200]),
            ("grant team admin", Box::new(|c| c.grant_role(T)), [200, 200, 200, 403, 403]),
            ("grant org admin", Box::new(|c| c.grant_role(O)), [200, 200, 403, 403, 403]),
            ("grant gateway admin", Box::new(|c| c.grant_role(G)), [200, 403, 403, 403, 403]),
            ("own key", Box::new(|c| c.create_key(&a1, Some(&me))), [200, 200, 200, 200, 403]),
            ("a peer's key", Box::new(|c| c.create_key(&a1, Some(&peer))), [200, 200, 200, 403, 403]),
            ("a userless key", Box::new(|c| c.create_key(&a1, None)), [200, 200, 200, 403, 403]),
            ("an org admin's key", Box::new(|c| c.create_key(&a1, Some(&a1_org_admin))), [200, 200, 403, 403, 403]),
            ("key in sibling team", Box::new(|c| c.create_key(&a2, None)), [200, 200, 404, 404, 404]),
            ("key in other org", Box::new(|c| c.create_key(&b1, None)), [200, 404, 404, 404, 404]),
            ("read key of own team", Box::new(|c| c.read_key(&a1)), [200, 200, 200, 200, 200]),
            ("read key of sibling", Box::new(|c| c.read_key(&a2)), [200, 200, 404, 404, 404]),
            ("read key of other org", Box::new(|c| c.read_key(&b1)), [200, 404, 404, 404, 404]),
            ("change own key", Box::new(|c| c.manage_key(&a1, Some(&me))), [200, 200, 200, 200, 403]),
            ("change a peer's key", Box::new(|c| c.manage_key(&a1, Some(&peer))), [200, 200, 200, 403, 403]),
            ("change a userless key", Box::new(|c| c.manage_key(&a1, None)), [200, 200, 200, 403, 403]),
            ("change a team admin's key", Box::new(|c| c.manage_key(&a1, Some(&a1_admin))), [200, 200, 200, 403, 403]),
            ("change an org admin's key", Box::new(|c| c.manage_key(&a1, Some(&a1_org_admin))), [200, 200, 403, 403, 403]),
            ("change sibling's key", Box::new(|c| c.manage_key(&a2, None)), [200, 200, 404, 404, 404]),
            ("change other org's key", Box::new(|c| c.manage_key(&b1, None)), [200, 404, 404, 404, 404]),
            ("own org's quotas", Box::new(|c| c.set_org_quotas("a")), [200, 403, 403, 403, 403]),
            ("other org's quotas", Box::new(|c| c.set_org_quotas("b")), [200, 404, 404, 404, 404]),
            ("quotas of a team of own org", Box::new(|c| c.set_team_quotas("a")), [200, 200, 403, 403, 403]),
            ("quotas of a team of other org", Box::new(|c| c.set_team_quotas("b")), [200, 404, 404, 404, 404]),
            ("quotas of a member", Box::new(|c| c.set_user_quotas(&a1, M)), [200, 200, 200, 403, 403]),
            ("quotas of a team admin", Box::new(|c| c.set_user_quotas(&a1, T)), [200, 200, 200, 403, 403]),
            ("quotas of an org admin", Box::new(|c| c.set_user_quotas(&a1, O)), [200, 200, 403, 403, 403]),
            ("quotas of a gateway admin", Box::new(|c| c.set_user_quotas(&a1, G)), [200, 403, 403, 403, 403]),
            ("quotas of sibling's user", Box::new(|c| c.set_user_quotas(&a2, V)), [200, 200, 404, 404, 404]),
            ("quotas of other org's user", Box::new(|c| c.set_user_quotas(&b1, V)), [200, 404, 404, 404, 404]),
            ("quotas of own key", Box::new(|c| c.set_key_quotas(&a1, Some(&me))), [200, 200, 200, 200, 403]),
            ("quotas of a peer's key", Box::new(|c| c.set_key_quotas(&a1, Some(&peer))), [200, 200, 200, 403, 403]),
            ("quotas of a userless key", Box::new(|c| c.set_key_quotas(&a1, None)), [200, 200, 200, 403, 403]),
            ("quotas of an org admin's key", Box::new(|c| c.set_key_quotas(&a1, Some(&a1_org_admin))), [200, 200, 403, 403, 403]),
            ("quotas of sibling's key", Box::new(|c| c.set_key_quotas(&a2, None)), [200, 200, 404, 404, 404]),
            ("quotas of other org's key", Box::new(|c| c.set_key_quotas(&b1, None)), [200, 404, 404, 404, 404]),
        ];
        for (what, check, want) in &rules {
            for (role, want) in [G, O, T, M, V].into_iter().zip(want) {
                assert_eq!(code(check(&caller(role))), *want, "{what} as {role}");
            }
        }
    }

    #[test]
    fn out_of_scope_and_missing_read_alike() {
        let member = caller(M);
        let hidden = format!("{:?}", member.read_team(&team("b", "b1")).unwrap_err());
        let missing = format!(
            "{:?}",
            AdminError::from(portcullis_store::StoreError::NotFound { entity: "team" })
        );
        assert_eq!(hidden, missing);
        let parent = member.create_user(&team("b", "b1"), V).unwrap_err();
        assert_eq!(parent.status(), StatusCode::NOT_FOUND);
        assert!(format!("{parent:?}").contains("param: Some(\"team_id\")"));
    }

    /// A caller who may change an object but not its quotas is told that quotas are the
    /// reason.
    #[test]
    fn refusals_of_quotas_name_them() {
        for e in [
            caller(O).set_org_quotas("a").unwrap_err(),
            caller(T).set_team_quotas("a").unwrap_err(),
            caller(T).set_user_quotas(&team("a", "a1"), O).unwrap_err(),
            caller(V)
                .set_key_quotas(&team("a", "a1"), None)
                .unwrap_err(),
        ] {
            assert_eq!(e.status(), StatusCode::FORBIDDEN);
            assert!(e.message().contains("quotas (limits and budgets)"), "{e:?}");
        }
        // An org admin renames its organization but does not set its quotas.
        assert_eq!(code(caller(O).update_org("a")), 200);
    }

    #[test]
    fn a_member_owns_the_keys_it_makes() {
        assert_eq!(caller(M).key_owner(None).as_deref(), Some("me"));
        assert_eq!(caller(M).key_owner(Some("x".into())).as_deref(), Some("x"));
        assert_eq!(caller(T).key_owner(None), None);
        assert_eq!(caller(V).key_owner(None), None);
        // A member bound to no user (an identity without a stored user) owns no key.
        let unbound = Caller {
            user_id: None,
            ..caller(M)
        };
        assert_eq!(code(unbound.create_key(&team("a", "a1"), None)), 403);
    }

    #[test]
    fn lists_are_forced_into_scope() {
        let s = |org: Option<&str>, team: Option<&str>| ListScope {
            org_id: org.map(str::to_owned),
            team_id: team.map(str::to_owned),
        };
        let ask = |c: &Caller, org: Option<&str>, team: Option<&str>| {
            c.list_scope(org.map(str::to_owned), team.map(str::to_owned))
        };
        let g = caller(G);
        assert_eq!(ask(&g, None, None), Some(s(None, None)));
        assert_eq!(
            ask(&g, Some("b"), Some("b1")),
            Some(s(Some("b"), Some("b1")))
        );
        let o = caller(O);
        assert_eq!(ask(&o, None, None), Some(s(Some("a"), None)));
        assert_eq!(
            ask(&o, Some("a"), Some("a2")),
            Some(s(Some("a"), Some("a2")))
        );
        // Another organization's team id is still limited to the caller's organization.
        assert_eq!(ask(&o, None, Some("b1")), Some(s(Some("a"), Some("b1"))));
        assert_eq!(ask(&o, Some("b"), None), None);
        for role in [T, M, V] {
            let c = caller(role);
            assert_eq!(ask(&c, None, None), Some(s(Some("a"), Some("a1"))));
            assert_eq!(
                ask(&c, Some("a"), Some("a1")),
                Some(s(Some("a"), Some("a1")))
            );
            assert_eq!(ask(&c, None, Some("a2")), None);
            assert_eq!(ask(&c, Some("b"), None), None);
        }
        // A bound role without a binding sees nothing.
        let lost = Caller {
            org_id: None,
            team_id: None,
            ..caller(T)
        };
        assert_eq!(ask(&lost, None, None), None);
        assert_eq!(code(lost.read_org("a")), 404);
        assert_eq!(code(lost.read_team(&team("a", "a1"))), 404);
    }
}
