//! CloudFormation and SAM templates: the model read from YAML (short-form tags) or JSON, the
//! intrinsic functions, the SAM transform (`AWS::Serverless-2016-10-31`) and the stack planner
//! (template + deployed state -> change set).
//!
//! No I/O beyond reading the template text it is given: deploying is the local region's job
//! (meridian-local) or AWS's.

pub mod declared;
pub mod eval;
pub mod extensions;
pub mod graph;
pub mod include;
pub mod plan;
pub mod rules;
pub mod sam;
pub mod schema;
pub mod template;

pub use eval::{resolve_parameters, Evaluator, Parameters, Pseudo, Resolver};
pub use plan::{Change, ChangeAction, Deployed, Replacement};
pub use template::{Resource, Template, TemplateError};
