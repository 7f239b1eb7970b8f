//! Custom domains of APIs (the `Domain` property of `AWS::Serverless::Api` and
//! `AWS::Serverless::HttpApi`) as aws-sam-translator 1.110.0 makes them:
//!
//! - REST APIs: an `AWS::ApiGateway::DomainName` (EDGE or REGIONAL, with mutual TLS) and one
//!   `AWS::ApiGateway::BasePathMapping` per base path; a PRIVATE domain is an
//!   `AWS::ApiGateway::DomainNameV2` with `AWS::ApiGateway::BasePathMappingV2`s and, with an
//!   `AccessAssociation`, an `AWS::ApiGateway::DomainNameAccessAssociation`.
//! - HTTP APIs: an `AWS::ApiGatewayV2::DomainName` (REGIONAL only) and one
//!   `AWS::ApiGatewayV2::ApiMapping` per base path.
//! - Both: with `Route53`, the domain's alias records in an `AWS::Route53::RecordSetGroup` that
//!   every API of the template naming the same hosted zone shares ([`RecordSetGroups`]), unless a
//!   REST API asks for a `SeparateRecordSetGroup`.
//!
//! Local regions do not serve custom domains: these resources are refused at deploy time as
//! unsupported types, as any unknown type is.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::hash::logical_id;
use super::{python_list, res_err, truthy, CfnResource, Failure};

const ENDPOINTS: &[&str] = &["EDGE", "REGIONAL", "PRIVATE"];
const MTLS_FIELDS: &[&str] = &["TruststoreUri", "TruststoreVersion"];
/// CloudFront's hosted zone, where an EDGE domain's alias points.
const CLOUDFRONT_HOSTED_ZONE: &str = "Z2FDTNDATAQYW2";

/// The record set groups of the template, by logical id: APIs whose `Route53` names the same
/// hosted zone add their records to one group (the first API's attributes stay on it).
pub(crate) type RecordSetGroups = BTreeMap<String, CfnResource>;

/// What an API's `Domain` adds to the template.
pub(crate) struct ApiDomain {
    /// The domain, its mappings, the record set group (as it stands with this API's records) and
    /// the access association, in SAM's order.
    pub resources: Vec<CfnResource>,
    /// The configuration as SAM leaves it after reading it (a REST API's deployment hashes it).
    pub config: Map<String, Value>,
}

/// The API being given a domain.
struct Api<'a> {
    id: &'a str,
    passthrough: &'a Map<String, Value>,
}

impl Api<'_> {
    fn resource(&self, id: impl Into<String>, resource_type: &str) -> CfnResource {
        let mut r = CfnResource::new(id, resource_type);
        r.attributes = self.passthrough.clone();
        r
    }

    /// `{"Ref": "<api>.Stage"}`, resolved to the API's stage at the end of the transform.
    fn stage_ref(&self) -> Value {
        json!({"Ref": format!("{}.Stage", self.id)})
    }

    /// `sam_expect(...).to_be_a_map()`.
    fn expect_map<'v>(&self, v: &'v Value, path: &str) -> Result<&'v Map<String, Value>, Failure> {
        v.as_object()
            .ok_or_else(|| res_err(self.id, format!("Property '{path}' should be a map.")))
    }

    /// `sam_expect(...).to_not_be_none()`.
    fn expect_present<'v>(&self, config: &'v Map<String, Value>, key: &str) -> Result<&'v Value, Failure> {
        present(config, key).ok_or_else(|| res_err(self.id, format!("Property 'Domain.{key}' is required.")))
    }
}

/// `dict.get(key)` that is not None.
fn present<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    m.get(key).filter(|v| !v.is_null())
}

/// `dict.get(key)` that is truthy.
fn given<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    m.get(key).filter(|v| truthy(v))
}

/// `BasePath`: one path, a list of them, or none (anything else falsy or of another type).
fn base_paths(config: &Map<String, Value>) -> Option<Vec<Value>> {
    match given(config, "BasePath")? {
        v @ Value::String(_) => Some(vec![v.clone()]),
        Value::Array(items) => Some(items.clone()),
        _ => None,
    }
}

/// `Domain` of an `AWS::Serverless::Api` (its parameters already resolved).
pub(crate) fn rest(
    groups: &mut RecordSetGroups,
    api_id: &str,
    domain: &Value,
    passthrough: &Map<String, Value>,
) -> Result<ApiDomain, Failure> {
    let api = Api {
        id: api_id,
        passthrough,
    };
    let config = api.expect_map(domain, "Domain")?;
    if config.get("EndpointConfiguration") == Some(&json!("PRIVATE")) {
        rest_private(&api, groups, config.clone())
    } else {
        rest_public(&api, groups, config.clone())
    }
}

/// `_construct_api_domain`: an EDGE or REGIONAL domain.
fn rest_public(
    api: &Api<'_>,
    groups: &mut RecordSetGroups,
    mut config: Map<String, Value>,
) -> Result<ApiDomain, Failure> {
    let domain_name = api.expect_present(&config, "DomainName")?.clone();
    let certificate = api.expect_present(&config, "CertificateArn")?.clone();
    let domain_id = format!("ApiGatewayDomainName{}", logical_id("", Some(&domain_name), None));
    config.insert("ApiDomainName".into(), json!(domain_id));

    let endpoint = match present(&config, "EndpointConfiguration") {
        None => {
            config.insert("EndpointConfiguration".into(), json!("REGIONAL"));
            "REGIONAL".to_string()
        }
        Some(Value::String(e)) if ENDPOINTS.contains(&e.as_str()) => e.clone(),
        Some(_) => return Err(invalid_endpoint(api.id, ENDPOINTS)),
    };
    let mut domain = api.resource(domain_id.clone(), "AWS::ApiGateway::DomainName");
    domain.set("DomainName", Some(domain_name.clone()));
    let certificate_property = if endpoint == "REGIONAL" {
        "RegionalCertificateArn"
    } else {
        "CertificateArn"
    };
    domain.set(certificate_property, Some(certificate));
    domain.set(
        "EndpointConfiguration",
        Some(endpoint_configuration(&endpoint, &config)),
    );
    if let Some(mtls) = given(&config, "MutualTlsAuthentication") {
        let mtls = api.expect_map(mtls, "Domain.MutualTlsAuthentication")?;
        if mtls.keys().any(|k| !MTLS_FIELDS.contains(&k.as_str())) {
            return Err(res_err(
                api.id,
                format!(
                    "Available Domain.MutualTlsAuthentication fields are {}.",
                    python_list(MTLS_FIELDS)
                ),
            ));
        }
        domain.set("MutualTlsAuthentication", Some(Value::Object(truststore(mtls))));
    }
    set_optional_properties(
        &mut domain,
        &config,
        &[
            "SecurityPolicy",
            "EndpointAccessMode",
            "OwnershipVerificationCertificateArn",
        ],
    )?;

    let normalize = config.get("NormalizeBasePath").is_none_or(truthy);
    let mut resources = vec![domain];
    match base_paths(&config) {
        None => resources.push(base_path_mapping(
            api,
            &domain_id,
            format!("{}BasePathMapping", api.id),
            None,
        )),
        Some(paths) => {
            for (path, alnum) in expect_strings(api, &paths)? {
                let value = if normalize { alnum.clone() } else { path };
                let id = format!("{}{alnum}BasePathMapping", api.id);
                resources.push(base_path_mapping(api, &domain_id, id, Some(value)));
            }
        }
    }
    resources.extend(route53(api, groups, &mut config, &domain_id, Flavor::Rest)?);
    Ok(ApiDomain { resources, config })
}

/// `_construct_api_domain_v2`: a PRIVATE domain.
fn rest_private(
    api: &Api<'_>,
    groups: &mut RecordSetGroups,
    mut config: Map<String, Value>,
) -> Result<ApiDomain, Failure> {
    let domain_name = api.expect_present(&config, "DomainName")?.clone();
    let certificate = api.expect_present(&config, "CertificateArn")?.clone();
    let domain_id = format!("ApiGatewayDomainNameV2{}", logical_id("", Some(&domain_name), None));
    let domain_ref = json!({"Ref": domain_id});
    let mut domain = api.resource(domain_id.clone(), "AWS::ApiGateway::DomainNameV2");
    domain.set("DomainName", Some(domain_name.clone()));
    domain.set("CertificateArn", Some(certificate));
    domain.set(
        "EndpointConfiguration",
        Some(endpoint_configuration("PRIVATE", &config)),
    );
    set_optional_properties(
        &mut domain,
        &config,
        &["SecurityPolicy", "EndpointAccessMode", "Policy"],
    )?;

    let normalize = config.get("NormalizeBasePath").is_none_or(truthy);
    let mapping = |id: String, base_path: Option<String>| {
        let mut m = api.resource(id, "AWS::ApiGateway::BasePathMappingV2");
        m.set("DomainNameArn", Some(domain_ref.clone()));
        m.set("RestApiId", Some(json!({"Ref": api.id})));
        m.set("Stage", Some(api.stage_ref()));
        m.set("BasePath", base_path.map(Value::String));
        m
    };
    let mut resources = vec![domain];
    match base_paths(&config) {
        None => resources.push(mapping(format!("{}BasePathMapping", api.id), None)),
        Some(paths) => {
            for (path, alnum) in expect_strings(api, &paths)? {
                let value = if normalize { alnum.clone() } else { path };
                resources.push(mapping(format!("{}{alnum}BasePathMapping", api.id), Some(value)));
            }
        }
    }
    let association = match config.get("AccessAssociation").filter(|v| !v.is_null()) {
        None => None,
        Some(a) => {
            let a = api.expect_map(a, "Domain.AccessAssociation")?;
            let endpoint = a.get("VpcEndpointId").cloned().unwrap_or(Value::Null);
            let id = logical_id("DomainNameAccessAssociation", Some(&json!([endpoint, domain_id])), None);
            let mut r = api.resource(id, "AWS::ApiGateway::DomainNameAccessAssociation");
            r.set("DomainNameArn", Some(domain_ref.clone()));
            r.set("AccessAssociationSourceType", Some(json!("VPCE")));
            r.set("AccessAssociationSource", Some(endpoint));
            Some(r)
        }
    };
    // a PRIVATE domain's alias names the VPC endpoint, not the domain
    resources.extend(route53(api, groups, &mut config, &domain_id, Flavor::Rest)?);
    resources.extend(association);
    Ok(ApiDomain { resources, config })
}

fn invalid_endpoint(api_id: &str, allowed: &[&str]) -> Failure {
    res_err(
        api_id,
        format!(
            "EndpointConfiguration for Custom Domains must be one of {}.",
            python_list(allowed)
        ),
    )
}

/// A REST domain's `EndpointConfiguration`: its type, and the `IpAddressType` when given.
fn endpoint_configuration(endpoint: &str, config: &Map<String, Value>) -> Value {
    let mut ec = Map::new();
    ec.insert("Types".into(), json!([endpoint]));
    if let Some(t) = given(config, "IpAddressType") {
        ec.insert("IpAddressType".into(), t.clone());
    }
    Value::Object(ec)
}

/// The truststore fields of a `MutualTlsAuthentication` that are set.
fn truststore(mtls: &Map<String, Value>) -> Map<String, Value> {
    MTLS_FIELDS
        .iter()
        .filter_map(|f| given(mtls, f).map(|v| (f.to_string(), v.clone())))
        .collect()
}

/// `_set_optional_domain_properties`: `SecurityPolicy`, `EndpointAccessMode`, `Policy` and
/// `OwnershipVerificationCertificateArn` when given; one the domain's type lacks is refused as
/// SAM refuses it (naming the domain).
fn set_optional_properties(
    domain: &mut CfnResource,
    config: &Map<String, Value>,
    supported: &[&str],
) -> Result<(), Failure> {
    for key in [
        "SecurityPolicy",
        "EndpointAccessMode",
        "Policy",
        "OwnershipVerificationCertificateArn",
    ] {
        let Some(v) = given(config, key) else { continue };
        if !supported.contains(&key) {
            return Err(res_err(
                &domain.logical_id,
                format!(
                    "property {key} not defined for resource of type {}",
                    domain.resource_type
                ),
            ));
        }
        domain.set(key, Some(v.clone()));
    }
    Ok(())
}

/// `sam_expect(basepaths, ..., "Domain.BasePath").to_be_a_list_of(STRING)`: each path with its
/// letters and digits only (the mapping's id, and its path when normalized).
fn expect_strings(api: &Api<'_>, paths: &[Value]) -> Result<Vec<(String, String)>, Failure> {
    paths
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Value::String(s) => Ok((s.clone(), s.chars().filter(|c| c.is_alphanumeric()).collect())),
            _ => Err(res_err(
                api.id,
                format!("Property 'Domain.BasePath[{i}]' should be a string."),
            )),
        })
        .collect()
}

/// `_create_basepath_mapping`.
fn base_path_mapping(api: &Api<'_>, domain_id: &str, id: String, base_path: Option<String>) -> CfnResource {
    let mut m = api.resource(id, "AWS::ApiGateway::BasePathMapping");
    m.set("DomainName", Some(json!({"Ref": domain_id})));
    m.set("RestApiId", Some(json!({"Ref": api.id})));
    m.set("Stage", Some(api.stage_ref()));
    m.set("BasePath", base_path.map(Value::String));
    m
}

/// `Domain` of an `AWS::Serverless::HttpApi` (its parameters already resolved). `tags` are the
/// domain's: SAM's own tag, or the API's tags when it propagates them.
pub(crate) fn http(
    groups: &mut RecordSetGroups,
    api_id: &str,
    config: &Map<String, Value>,
    passthrough: &Map<String, Value>,
    tags: Value,
) -> Result<Vec<CfnResource>, Failure> {
    let api = Api {
        id: api_id,
        passthrough,
    };
    let mut config = config.clone();
    let (Some(domain_name), Some(certificate)) = (
        present(&config, "DomainName").cloned(),
        present(&config, "CertificateArn").cloned(),
    ) else {
        return Err(res_err(
            api.id,
            "Custom Domains only works if both DomainName and CertificateArn are provided.",
        ));
    };
    let domain_id = format!("ApiGatewayDomainNameV2{}", logical_id("", Some(&domain_name), None));
    let mut domain = api.resource(domain_id.clone(), "AWS::ApiGatewayV2::DomainName");
    domain.set("DomainName", Some(domain_name));
    domain.set("Tags", Some(tags));
    match present(&config, "EndpointConfiguration") {
        None => {
            config.insert("EndpointConfiguration".into(), json!("REGIONAL"));
        }
        Some(e) if e == "REGIONAL" => {}
        Some(_) => return Err(invalid_endpoint(api.id, &["REGIONAL"])),
    }
    let mut name_config = Map::new();
    name_config.insert("CertificateArn".into(), certificate);
    name_config.insert("EndpointType".into(), json!("REGIONAL"));
    for key in ["OwnershipVerificationCertificateArn", "SecurityPolicy"] {
        if let Some(v) = given(&config, key) {
            name_config.insert(key.into(), v.clone());
        }
    }
    domain.set("DomainNameConfigurations", Some(json!([name_config])));
    if let Some(mtls) = given(&config, "MutualTlsAuthentication") {
        let Some(mtls) = mtls.as_object() else {
            return Err(res_err(
                api.id,
                format!(
                    "MutualTlsAuthentication must be a map with at least one of the following fields {}.",
                    python_list(MTLS_FIELDS)
                ),
            ));
        };
        let mut invalid: Vec<&str> = mtls
            .keys()
            .map(String::as_str)
            .filter(|k| !MTLS_FIELDS.contains(k))
            .collect();
        if !invalid.is_empty() {
            invalid.sort_unstable();
            // SAM names the invalid fields where the resource's id goes
            return Err(res_err(
                &invalid.join(","),
                format!(
                    "Available MutualTlsAuthentication fields are {}.",
                    python_list(MTLS_FIELDS)
                ),
            ));
        }
        domain.set("MutualTlsAuthentication", Some(Value::Object(truststore(mtls))));
    }

    let mapping = |id: String, key: Option<String>| {
        let mut m = api.resource(id, "AWS::ApiGatewayV2::ApiMapping");
        m.set("DomainName", Some(json!({"Ref": domain_id})));
        m.set("ApiId", Some(json!({"Ref": api.id})));
        m.set("Stage", Some(api.stage_ref()));
        m.set("ApiMappingKey", key.map(Value::String));
        m
    };
    let mut resources = vec![domain];
    match base_paths(&config) {
        None => resources.push(mapping(format!("{}ApiMapping", api.id), None)),
        Some(paths) => {
            for path in paths {
                let Value::String(path) = path else {
                    return Err(res_err(api.id, "Basepath must be a string."));
                };
                // [^0-9a-zA-Z\/\-\_]+
                if !path.chars().all(|c| c.is_ascii_alphanumeric() || "/-_".contains(c)) {
                    return Err(res_err(api.id, "Invalid Basepath name provided."));
                }
                let squeezed: String = path.chars().filter(|c| !"/-_".contains(*c)).collect();
                let key = path.trim_matches('/').to_string();
                resources.push(mapping(format!("{}{squeezed}ApiMapping", api.id), Some(key)));
            }
        }
    }
    resources.extend(route53(&api, groups, &mut config, &domain_id, Flavor::Http)?);
    Ok(resources)
}

/// Where SAM's REST and HTTP generators differ in the record set group.
#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    /// Both hosted zone keys copied when present; `SeparateRecordSetGroup` honoured.
    Rest,
    /// The hosted zone's id, else its name.
    Http,
}

/// The `Route53` of a domain: its records, in the group shared by the hosted zone (returned as
/// it stands now) or in a group of its own.
fn route53(
    api: &Api<'_>,
    groups: &mut RecordSetGroups,
    config: &mut Map<String, Value>,
    target: &str,
    flavor: Flavor,
) -> Result<Option<CfnResource>, Failure> {
    let Some(route53) = present(config, "Route53") else {
        return Ok(None);
    };
    let mut route53 = api.expect_map(route53, "Domain.Route53")?.clone();
    let zone_id = present(&route53, "HostedZoneId").cloned();
    let zone_name = present(&route53, "HostedZoneName").cloned();
    if zone_id.is_none() && zone_name.is_none() {
        return Err(res_err(
            api.id,
            "HostedZoneId or HostedZoneName is required to enable Route53 support on Custom Domains.",
        ));
    }
    // `route53.get("HostedZoneId") or route53.get("HostedZoneName")`
    let zone = zone_id
        .clone()
        .filter(truthy)
        .or(zone_name.clone())
        .unwrap_or(Value::Null);
    let group_id = format!("RecordSetGroup{}", logical_id("", Some(&zone), None));

    if flavor == Flavor::Rest {
        if let Some(separate) = given(&route53, "SeparateRecordSetGroup") {
            if !separate.is_boolean() {
                return Err(res_err(
                    api.id,
                    "Property 'Domain.Route53.SeparateRecordSetGroup' should be a boolean.",
                ));
            }
            let domain_name = config.get("DomainName").cloned().unwrap_or(Value::Null);
            let id = logical_id("RecordSetGroup", Some(&json!([zone, domain_name])), None);
            let mut group = api.resource(id, "AWS::Route53::RecordSetGroup");
            group.set("HostedZoneId", zone_id.filter(truthy));
            group.set("HostedZoneName", zone_name.filter(truthy));
            let records = record_sets(config, &mut route53, target);
            config.insert("Route53".into(), Value::Object(route53));
            group.set("RecordSets", Some(Value::Array(records)));
            return Ok(Some(group));
        }
    }

    let group = groups.entry(group_id.clone()).or_insert_with(|| {
        let mut g = api.resource(group_id, "AWS::Route53::RecordSetGroup");
        match flavor {
            Flavor::Rest => {
                g.set("HostedZoneId", route53.get("HostedZoneId").cloned());
                g.set("HostedZoneName", route53.get("HostedZoneName").cloned());
            }
            Flavor::Http if route53.contains_key("HostedZoneId") => {
                g.set("HostedZoneId", route53.get("HostedZoneId").cloned());
            }
            Flavor::Http => g.set("HostedZoneName", route53.get("HostedZoneName").cloned()),
        }
        g.properties.insert("RecordSets".into(), json!([]));
        g
    });
    let records = record_sets(config, &mut route53, target);
    config.insert("Route53".into(), Value::Object(route53));
    if let Some(Value::Array(list)) = group.properties.get_mut("RecordSets") {
        list.extend(records);
    }
    Ok(Some(group.clone()))
}

/// `_construct_record_sets_for_domain`: the domain's A record, and its AAAA record with `IpV6`.
fn record_sets(config: &Map<String, Value>, route53: &mut Map<String, Value>, target: &str) -> Vec<Value> {
    let alias = alias_target(config, route53, target);
    let name = config.get("DomainName").cloned().unwrap_or(Value::Null);
    let record = |record_type: &str| {
        let mut r = Map::new();
        r.insert("Name".into(), name.clone());
        r.insert("Type".into(), json!(record_type));
        r.insert("AliasTarget".into(), alias.clone());
        for key in ["Region", "SetIdentifier"] {
            if let Some(v) = present(route53, key) {
                r.insert(key.into(), v.clone());
            }
        }
        Value::Object(r)
    };
    let mut out = vec![record("A")];
    if route53.get("IpV6") == Some(&json!(true)) {
        out.push(record("AAAA"));
    }
    out
}

/// `_construct_alias_target`: the REGIONAL domain's own name, CloudFront's for an EDGE domain
/// (remembered in `route53` as SAM does), the VPC endpoint's for a PRIVATE one.
fn alias_target(config: &Map<String, Value>, route53: &mut Map<String, Value>, target: &str) -> Value {
    let mut alias = Map::new();
    if let Some(h) = present(route53, "EvaluateTargetHealth") {
        alias.insert("EvaluateTargetHealth".into(), h.clone());
    }
    let get_att = |attribute: &str| json!({"Fn::GetAtt": [target, attribute]});
    match config.get("EndpointConfiguration").and_then(Value::as_str) {
        Some("REGIONAL") => {
            alias.insert("HostedZoneId".into(), get_att("RegionalHostedZoneId"));
            alias.insert("DNSName".into(), get_att("RegionalDomainName"));
        }
        Some("EDGE") => {
            if present(route53, "DistributionDomainName").is_none() {
                route53.insert("DistributionDomainName".into(), get_att("DistributionDomainName"));
            }
            alias.insert("HostedZoneId".into(), json!(CLOUDFRONT_HOSTED_ZONE));
            alias.insert(
                "DNSName".into(),
                route53.get("DistributionDomainName").cloned().unwrap_or(Value::Null),
            );
        }
        _ => {
            let get = |k: &str| route53.get(k).cloned().unwrap_or(Value::Null);
            alias.insert("HostedZoneId".into(), get("VpcEndpointHostedZoneId"));
            alias.insert("DNSName".into(), get("VpcEndpointDomainName"));
        }
    }
    Value::Object(alias)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(resources: &[CfnResource]) -> Vec<(&str, &str)> {
        resources
            .iter()
            .map(|r| (r.logical_id.as_str(), r.resource_type.as_str()))
            .collect()
    }

    #[test]
    fn a_rest_domain_with_base_paths_and_a_hosted_zone() {
        let mut groups = RecordSetGroups::new();
        let domain = json!({
            "DomainName": "api.example.com",
            "CertificateArn": "arn:cert",
            "BasePath": ["/one", "two-2"],
            "Route53": {"HostedZoneId": "Z123"}
        });
        let out = rest(&mut groups, "MyApi", &domain, &Map::new()).expect("a valid domain");
        let domain_id = format!(
            "ApiGatewayDomainName{}",
            logical_id("", Some(&json!("api.example.com")), None)
        );
        let group_id = format!("RecordSetGroup{}", logical_id("", Some(&json!("Z123")), None));
        assert_eq!(
            types(&out.resources),
            vec![
                (domain_id.as_str(), "AWS::ApiGateway::DomainName"),
                ("MyApioneBasePathMapping", "AWS::ApiGateway::BasePathMapping"),
                ("MyApitwo2BasePathMapping", "AWS::ApiGateway::BasePathMapping"),
                (group_id.as_str(), "AWS::Route53::RecordSetGroup"),
            ]
        );
        let d = &out.resources[0].properties;
        assert_eq!(d["RegionalCertificateArn"], json!("arn:cert"));
        assert_eq!(d["EndpointConfiguration"], json!({"Types": ["REGIONAL"]}));
        assert_eq!(out.resources[1].properties["BasePath"], json!("one"));
        assert_eq!(out.resources[1].properties["Stage"], json!({"Ref": "MyApi.Stage"}));
        let records = &out.resources[3].properties["RecordSets"];
        assert_eq!(records[0]["Type"], json!("A"));
        assert_eq!(
            records[0]["AliasTarget"]["DNSName"],
            json!({"Fn::GetAtt": [domain_id, "RegionalDomainName"]})
        );
        // SAM's reading of the configuration joins the deployment's hash
        assert_eq!(out.config["EndpointConfiguration"], json!("REGIONAL"));
        assert_eq!(out.config["ApiDomainName"], json!(domain_id));
    }

    #[test]
    fn apis_on_one_hosted_zone_share_a_record_set_group() {
        let mut groups = RecordSetGroups::new();
        let domain = |name: &str| {
            json!({"DomainName": name, "CertificateArn": "arn:cert", "EndpointConfiguration": "EDGE",
                   "Route53": {"HostedZoneName": "example.com.", "IpV6": true}})
        };
        rest(&mut groups, "One", &domain("one.example.com"), &Map::new()).expect("valid");
        let out = rest(&mut groups, "Two", &domain("two.example.com"), &Map::new()).expect("valid");
        let group = out.resources.last().expect("a group");
        let records = group.properties["RecordSets"].as_array().expect("a list");
        assert_eq!(records.len(), 4);
        assert_eq!(records[0]["AliasTarget"]["HostedZoneId"], json!(CLOUDFRONT_HOSTED_ZONE));
        assert_eq!(groups.len(), 1);
    }

    #[test]
    fn domain_errors_use_sams_words() {
        let mut groups = RecordSetGroups::new();
        let err = |d: Value| match rest(&mut RecordSetGroups::new(), "MyApi", &d, &Map::new()) {
            Err(Failure::Resource(e)) => e.message,
            _ => "no error".into(),
        };
        assert_eq!(
            err(json!({"DomainName": "a.com"})),
            "Property 'Domain.CertificateArn' is required."
        );
        assert_eq!(
            err(json!({"DomainName": "a.com", "CertificateArn": "c", "EndpointConfiguration": "LOCAL"})),
            "EndpointConfiguration for Custom Domains must be one of ['EDGE', 'REGIONAL', 'PRIVATE']."
        );
        assert_eq!(
            err(json!({"DomainName": "a.com", "CertificateArn": "c", "Route53": {}})),
            "HostedZoneId or HostedZoneName is required to enable Route53 support on Custom Domains."
        );
        let http_err = http(&mut groups, "H", &Map::new(), &Map::new(), json!({}));
        assert!(matches!(http_err, Err(Failure::Resource(e))
            if e.message == "Custom Domains only works if both DomainName and CertificateArn are provided."));
    }

    #[test]
    fn an_http_domain_maps_its_base_paths() {
        let mut groups = RecordSetGroups::new();
        let config = json!({"DomainName": "h.example.com", "CertificateArn": "c", "BasePath": ["/v1/", "a_b"]});
        let out = http(
            &mut groups,
            "H",
            config.as_object().expect("a map"),
            &Map::new(),
            json!({"httpapi:createdBy": "SAM"}),
        )
        .expect("valid");
        assert_eq!(out[0].resource_type, "AWS::ApiGatewayV2::DomainName");
        assert_eq!(out[1].logical_id, "Hv1ApiMapping");
        assert_eq!(out[1].properties["ApiMappingKey"], json!("v1"));
        assert_eq!(out[2].logical_id, "HabApiMapping");
    }
}
