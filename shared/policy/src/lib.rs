//! Causeway authorization: the model catalog, the declared purposes and the Cedar policies, loaded together
//! as one [`PolicyBundle`].
//!
//! Constraints:
//! - Default deny. A call is allowed only when a `permit` matches and no `forbid` does; an evaluation error
//!   in a policy denies (it never allows).
//! - A bundle is loaded whole or not at all: the schema must parse, every policy must validate against it in
//!   strict mode, every policy must carry a unique `@id`, and the catalog and purposes must parse. A bundle
//!   that fails any check is refused, so a caller keeps the bundle it had.
//! - Every decision names the policies that decided it, and the bundle has a hash that goes on every audit
//!   record, so an auditor can tell which policy text was in force.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;

use causeway_contract::catalog::{Catalog, CatalogError, PurposeCatalog};
use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy, PolicyId,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use sha2::{Digest, Sha256};

/// The policy files shipped in `policies/`, compiled in as the embedded default.
pub mod embedded {
    /// `policies/catalog.toml`
    pub const CATALOG: &str = include_str!("../../../policies/catalog.toml");
    /// `policies/purposes.toml`
    pub const PURPOSES: &str = include_str!("../../../policies/purposes.toml");
    /// `policies/cedar/causeway.cedarschema`
    pub const SCHEMA: &str = include_str!("../../../policies/cedar/causeway.cedarschema");
    /// `policies/cedar/causeway.cedar`
    pub const POLICIES: &str = include_str!("../../../policies/cedar/causeway.cedar");
}

/// File names inside a policy directory.
pub mod files {
    /// The model catalog.
    pub const CATALOG: &str = "catalog.toml";
    /// The purpose catalog.
    pub const PURPOSES: &str = "purposes.toml";
    /// The Cedar schema.
    pub const SCHEMA: &str = "cedar/causeway.cedarschema";
    /// The Cedar policies.
    pub const POLICIES: &str = "cedar/causeway.cedar";
}

/// A policy bundle that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file could not be read.
    #[error("cannot read `{path}`: {message}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// The model or purpose catalog is wrong.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The Cedar schema does not parse.
    #[error("cedar schema: {0}")]
    Schema(String),
    /// A Cedar policy does not parse or does not validate against the schema.
    #[error("cedar policies: {0}")]
    Policies(String),
}

/// The text of the four files that make a bundle.
#[derive(Debug, Clone)]
pub struct PolicySources {
    /// `catalog.toml`
    pub catalog: String,
    /// `purposes.toml`
    pub purposes: String,
    /// The Cedar schema.
    pub schema: String,
    /// The Cedar policies.
    pub policies: String,
}

impl PolicySources {
    /// The files compiled into the binary.
    pub fn embedded() -> Self {
        Self {
            catalog: embedded::CATALOG.to_owned(),
            purposes: embedded::PURPOSES.to_owned(),
            schema: embedded::SCHEMA.to_owned(),
            policies: embedded::POLICIES.to_owned(),
        }
    }

    /// Reads the files from a policy directory laid out like `policies/`.
    pub fn read_dir(dir: &Path) -> Result<Self, PolicyError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| PolicyError::Read {
                path: path.display().to_string(),
                message: e.to_string(),
            })
        };
        Ok(Self {
            catalog: read(files::CATALOG)?,
            purposes: read(files::PURPOSES)?,
            schema: read(files::SCHEMA)?,
            policies: read(files::POLICIES)?,
        })
    }

    /// SHA-256 over the four sources (each prefixed with its length), hex: the bundle hash these sources make
    /// if they validate. Cheap, so a watcher can tell whether anything changed before validating.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [&self.catalog, &self.purposes, &self.schema, &self.policies] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A permit matched and no forbid did.
    Allow,
    /// Anything else.
    Deny,
}

/// An authorization decision. A deny is a value, audited like an allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allow or deny.
    pub effect: Effect,
    /// The `@id`s of the policies that decided: the permits for an allow, the forbids for a deny (empty when
    /// the deny is the default).
    pub reasons: Vec<String>,
    /// Policies that failed to evaluate (they count as not matching, so they can only deny).
    pub errors: Vec<String>,
}

impl Decision {
    /// True for [`Effect::Allow`].
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    /// The reasons as audit strings: `permit:<id>`, `forbid:<id>` or `default_deny`.
    pub fn audit_reasons(&self) -> Vec<String> {
        let mut out: Vec<String> = match (self.effect, self.reasons.is_empty()) {
            (Effect::Deny, true) => vec!["default_deny".to_owned()],
            (Effect::Deny, false) => self.reasons.iter().map(|r| format!("forbid:{r}")).collect(),
            (Effect::Allow, _) => self.reasons.iter().map(|r| format!("permit:{r}")).collect(),
        };
        out.extend(self.errors.iter().map(|e| format!("policy_error:{e}")));
        out
    }
}

/// Who asks, for what, with what: the inputs of one authorization.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// Verified user `sub`.
    pub user: &'a str,
    /// The user's verified groups.
    pub groups: &'a [String],
    /// Model alias.
    pub model_alias: &'a str,
    /// Declared purpose (already checked against the purpose catalog).
    pub purpose: &'a str,
    /// Data classification.
    pub data_classification: &'a str,
    /// Spoke account id, or empty.
    pub spoke_account: &'a str,
    /// Organizational unit, or empty.
    pub ou: &'a str,
    /// Application id, or empty.
    pub application: &'a str,
    /// Names of the tools the call offers the model (empty when none).
    pub tools: &'a [String],
    /// True when the call carries images.
    pub has_images: bool,
    /// True when the call carries documents.
    pub has_documents: bool,
}

/// Catalog, purposes and Cedar policies, validated together.
#[derive(Debug)]
pub struct PolicyBundle {
    catalog: Catalog,
    purposes: PurposeCatalog,
    schema: Schema,
    policies: PolicySet,
    policy_ids: Vec<String>,
    models: HashMap<String, Entity>,
    hash: String,
    authorizer: Authorizer,
    /// Decisions this bundle already made, by request (see [`PolicyBundle::authorize`]).
    decisions: Mutex<HashMap<RequestKey, Decision>>,
}

/// Most decisions a bundle remembers; when full it forgets them all and starts again (bounded memory, no
/// eviction bookkeeping on the hot path).
const REMEMBERED_DECISIONS: usize = 16_384;

/// Everything a decision reads, owned: the key of a remembered decision. Groups and tools are sets in the
/// Cedar request, so they are sorted (and tools deduplicated) here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RequestKey {
    user: String,
    groups: Vec<String>,
    model_alias: String,
    purpose: String,
    data_classification: String,
    spoke_account: String,
    ou: String,
    application: String,
    tools: Vec<String>,
    has_images: bool,
    has_documents: bool,
}

impl RequestKey {
    fn of(req: &AccessRequest<'_>) -> Self {
        let mut groups = req.groups.to_vec();
        groups.sort_unstable();
        groups.dedup();
        let mut tools = req.tools.to_vec();
        tools.sort_unstable();
        tools.dedup();
        Self {
            user: req.user.to_owned(),
            groups,
            model_alias: req.model_alias.to_owned(),
            purpose: req.purpose.to_owned(),
            data_classification: req.data_classification.to_owned(),
            spoke_account: req.spoke_account.to_owned(),
            ou: req.ou.to_owned(),
            application: req.application.to_owned(),
            tools,
            has_images: req.has_images,
            has_documents: req.has_documents,
        }
    }
}

fn type_name(name: &str) -> Result<EntityTypeName, PolicyError> {
    EntityTypeName::from_str(name).map_err(|e| PolicyError::Schema(e.to_string()))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl PolicyBundle {
    /// The bundle compiled into the binary.
    pub fn embedded() -> Result<Self, PolicyError> {
        Self::from_sources(&PolicySources::embedded())
    }

    /// Loads and validates a bundle from a policy directory.
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        Self::from_sources(&PolicySources::read_dir(dir)?)
    }

    /// Validates a bundle from its sources.
    pub fn from_sources(sources: &PolicySources) -> Result<Self, PolicyError> {
        let catalog = Catalog::from_toml(files::CATALOG, &sources.catalog)?;
        let purposes = PurposeCatalog::from_toml(files::PURPOSES, &sources.purposes)?;
        let (schema, _warnings) = Schema::from_cedarschema_str(&sources.schema)
            .map_err(|e| PolicyError::Schema(one_line(&format!("{e:?}"))))?;

        let parsed = PolicySet::from_str(&sources.policies)
            .map_err(|e| PolicyError::Policies(one_line(&format!("{e}"))))?;
        let mut policies = PolicySet::new();
        let mut policy_ids = Vec::new();
        for policy in parsed.policies() {
            let Some(id) = policy.annotation("id") else {
                return Err(PolicyError::Policies(format!(
                    "every policy needs an `@id(\"…\")` annotation; `{}` has none",
                    one_line(&policy.to_string())
                        .chars()
                        .take(80)
                        .collect::<String>()
                )));
            };
            let renamed: Policy = policy.new_id(PolicyId::new(id));
            policies
                .add(renamed)
                .map_err(|_| PolicyError::Policies(format!("policy id `{id}` is used twice")))?;
            policy_ids.push(id.to_owned());
        }
        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !validation.validation_passed() {
            let errors: Vec<String> = validation
                .validation_errors()
                .map(|e| format!("policy `{}`: {}", e.policy_id(), one_line(&e.to_string())))
                .collect();
            return Err(PolicyError::Policies(errors.join("; ")));
        }

        let model_type = type_name("Causeway::Model")?;
        let mut models = HashMap::new();
        for (alias, entry) in &catalog.models {
            let uid = EntityUid::from_type_name_and_id(model_type.clone(), EntityId::new(alias));
            let attrs = HashMap::from([
                (
                    "provider".to_owned(),
                    RestrictedExpression::new_string(entry.provider.as_str().to_owned()),
                ),
                (
                    "kind".to_owned(),
                    RestrictedExpression::new_string(entry.kind.as_str().to_owned()),
                ),
            ]);
            let entity = Entity::new(uid, attrs, HashSet::new())
                .map_err(|e| PolicyError::Schema(e.to_string()))?;
            models.insert(alias.clone(), entity);
        }

        Ok(Self {
            catalog,
            purposes,
            schema,
            policies,
            policy_ids,
            models,
            hash: sources.hash(),
            authorizer: Authorizer::new(),
            decisions: Mutex::default(),
        })
    }

    /// The model catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The purpose catalog.
    pub fn purposes(&self) -> &PurposeCatalog {
        &self.purposes
    }

    /// SHA-256 over the four source files, hex. Recorded on every audit record.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The policy ids, in file order.
    pub fn policy_ids(&self) -> &[String] {
        &self.policy_ids
    }

    /// Decides one request. Never errors: anything that prevents a clean evaluation is a deny with a reason.
    ///
    /// A decision is a pure function of this bundle (catalog, schema, policies) and the request, so a request
    /// this bundle already decided is answered from memory; a reloaded policy set is a new bundle that
    /// remembers nothing.
    pub fn authorize(&self, req: &AccessRequest<'_>) -> Decision {
        let key = RequestKey::of(req);
        let remembered = self
            .decisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(decision) = remembered {
            return decision;
        }
        let decision = self.evaluate(req);
        let mut decisions = self
            .decisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if decisions.len() >= REMEMBERED_DECISIONS {
            decisions.clear();
        }
        decisions.insert(key, decision.clone());
        decision
    }

    /// Evaluates one request with Cedar.
    fn evaluate(&self, req: &AccessRequest<'_>) -> Decision {
        match self.try_authorize(req) {
            Ok(decision) => decision,
            Err(message) => Decision {
                effect: Effect::Deny,
                reasons: Vec::new(),
                errors: vec![message],
            },
        }
    }

    fn try_authorize(&self, req: &AccessRequest<'_>) -> Result<Decision, String> {
        let Some(model) = self.models.get(req.model_alias) else {
            return Err(format!("model `{}` is not in the catalog", req.model_alias));
        };
        let user_type = type_name("Causeway::User").map_err(|e| e.to_string())?;
        let group_type = type_name("Causeway::Group").map_err(|e| e.to_string())?;
        let action_type = type_name("Causeway::Action").map_err(|e| e.to_string())?;

        let groups: HashSet<EntityUid> = req
            .groups
            .iter()
            .map(|g| EntityUid::from_type_name_and_id(group_type.clone(), EntityId::new(g)))
            .collect();
        let user = EntityUid::from_type_name_and_id(user_type, EntityId::new(req.user));
        let mut entities = vec![
            Entity::new_no_attrs(user.clone(), groups.clone()),
            model.clone(),
        ];
        entities.extend(
            groups
                .into_iter()
                .map(|g| Entity::new_no_attrs(g, HashSet::new())),
        );
        let entities = Entities::from_entities(entities, Some(&self.schema))
            .map_err(|e| one_line(&e.to_string()))?;

        let context = Context::from_pairs([
            (
                "purpose".to_owned(),
                RestrictedExpression::new_string(req.purpose.to_owned()),
            ),
            (
                "data_classification".to_owned(),
                RestrictedExpression::new_string(req.data_classification.to_owned()),
            ),
            (
                "spoke_account".to_owned(),
                RestrictedExpression::new_string(req.spoke_account.to_owned()),
            ),
            (
                "ou".to_owned(),
                RestrictedExpression::new_string(req.ou.to_owned()),
            ),
            (
                "application".to_owned(),
                RestrictedExpression::new_string(req.application.to_owned()),
            ),
            (
                "tools".to_owned(),
                RestrictedExpression::new_set(
                    req.tools
                        .iter()
                        .map(|t| RestrictedExpression::new_string(t.clone())),
                ),
            ),
            (
                "has_images".to_owned(),
                RestrictedExpression::new_bool(req.has_images),
            ),
            (
                "has_documents".to_owned(),
                RestrictedExpression::new_bool(req.has_documents),
            ),
        ])
        .map_err(|e| one_line(&e.to_string()))?;
        let action = EntityUid::from_type_name_and_id(action_type, EntityId::new("invoke"));
        let request = Request::new(user, action, model.uid(), context, Some(&self.schema))
            .map_err(|e| one_line(&e.to_string()))?;

        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        let mut reasons: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        reasons.sort();
        let errors = response
            .diagnostics()
            .errors()
            .map(|e| one_line(&e.to_string()))
            .collect();
        let effect = match response.decision() {
            cedar_policy::Decision::Allow => Effect::Allow,
            cedar_policy::Decision::Deny => Effect::Deny,
        };
        Ok(Decision {
            effect,
            reasons,
            errors,
        })
    }
}

#[cfg(test)]
mod tests;
