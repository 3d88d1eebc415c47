//! The roles of the admin API. One type for every place a role appears: stored users, OIDC
//! claim mappings and the admin API's scope checks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a caller of the admin API may do, from most to least privileged:
///
/// - `gateway_admin`: everything, across organizations (the master key is one).
/// - `org_admin`: everything inside one organization.
/// - `team_admin`: everything inside one team.
/// - `member`: reads its team; manages its own keys.
/// - `viewer`: reads its team, changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Member,
    TeamAdmin,
    OrgAdmin,
    GatewayAdmin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::GatewayAdmin,
        Role::OrgAdmin,
        Role::TeamAdmin,
        Role::Member,
        Role::Viewer,
    ];

    /// The role's name on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GatewayAdmin => "gateway_admin",
            Self::OrgAdmin => "org_admin",
            Self::TeamAdmin => "team_admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown role name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRole;

impl fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown role: expected gateway_admin, org_admin, team_admin, member or viewer")
    }
}

impl std::error::Error for UnknownRole {}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownRole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_by_privilege() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{role}\""));
        }
        assert!("admin".parse::<Role>().is_err());
        assert!(Role::GatewayAdmin > Role::OrgAdmin);
        assert!(Role::OrgAdmin > Role::TeamAdmin);
        assert!(Role::TeamAdmin > Role::Member);
        assert!(Role::Member > Role::Viewer);
    }
}
