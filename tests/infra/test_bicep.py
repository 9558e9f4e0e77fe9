"""The Bicep in infra/, read with pycep-parser: what the deployment grants, sets and never emits.

Nothing here deploys (no subscription, no network): these tests check the templates' text, and
`make infra-check` runs checkov on them. docs/azure.md walks through `azd up`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from durable_ext.host.engine_functions import HEARTBEAT_SCHEDULE_SETTING
from durable_ext.host.wake_up import WAKE_UP_FUNCTION
from tests.infra.bicep import (
    INFRA,
    app_settings,
    bicep,
    bicep_files,
    body,
    conditional,
    decorator,
    dotted,
    function_call,
    parameter_default,
    resources_of_type,
    strings,
)

# Built-in role definition ids, checked against Microsoft's built-in roles list.
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"

ROLE_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"
USER_ASSIGNED_IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities"

# What a key-based connection looks like in a template or a setting.
KEY_MATERIAL = re.compile(
    r"AccountKey=|SharedAccessSignature=|SharedAccessKey=|listKeys\(|listAccountSas\(|"
    r"listServiceSas\(|DefaultEndpointsProtocol=",
    re.IGNORECASE,
)


def api_settings() -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings of every plan, Elastic Premium's extra settings) of the function app."""
    variables = bicep("app/api.bicep")["variables"]
    return (
        app_settings(variables["commonSettings"]["value"]),
        app_settings(variables["premiumSettings"]["value"]),
    )


def function_app() -> dict[str, Any]:
    (app,) = resources_of_type(bicep("app/api.bicep"), "Microsoft.Web/sites").values()
    return app["config"]


def module_params(module: str) -> dict[str, Any]:
    """The parameters main.bicep passes to one of its modules, accessors flattened."""
    params = bicep("main.bicep")["modules"][module]["config"]["params"]
    return {name: dotted(value) for name, value in params.items()}


def identity_symbol(parsed: dict[str, Any]) -> str:
    """The symbolic name of the one user-assigned identity a file declares or references."""
    (name,) = resources_of_type(parsed, USER_ASSIGNED_IDENTITY)
    return name


def role_assignments_to(principal: str) -> dict[str, tuple[str, str, str]]:
    """rbac.bicep's assignments to a principal parameter: role GUID -> (scope type, kind, name)."""
    rbac = bicep("app/rbac.bicep")
    variables = {name: var["value"] for name, var in rbac["variables"].items()}
    scopes = {name: resource["type"] for name, resource in rbac["resources"].items()}
    assigned = {}
    for name, resource in resources_of_type(rbac, ROLE_ASSIGNMENTS).items():
        config = body(resource)
        properties = config["properties"]
        if properties["principalId"] != principal:
            continue
        assert "condition" not in resource["config"], f"{name} is conditional"
        assert "loop_type" not in resource["config"], f"{name} is a loop"
        kind, arguments = function_call(properties["roleDefinitionId"])
        assert kind == "subscription_resource_id", name
        assert arguments["resource_type"] == "Microsoft.Authorization/roleDefinitions", name
        role = variables[arguments["resource_name_1"]]
        assert isinstance(role, str), name
        # The assignment's name is unique per scope, principal and role (guid(...)).
        assert function_call(config["name"]) == (
            "guid",
            {
                "base_string": {
                    "operator": {
                        "type": "property_accessor",
                        "operands": {"operand_1": config["scope"], "operand_2": "id"},
                    }
                },
                "extra_string_1": principal,
                "extra_string_2": arguments["resource_name_1"],
            },
        ), name
        assert role not in assigned, f"{name} assigns {role} twice"
        assigned[role] = (scopes[config["scope"]], properties["principalType"], name)
    return assigned


def test_identity_holds_the_storage_monitoring_and_key_vault_roles() -> None:
    assigned = role_assignments_to("identityPrincipalId")
    assert assigned.keys() == {
        STORAGE_BLOB_DATA_OWNER,
        STORAGE_QUEUE_DATA_CONTRIBUTOR,
        STORAGE_TABLE_DATA_CONTRIBUTOR,
        MONITORING_METRICS_PUBLISHER,
        KEY_VAULT_SECRETS_USER,
    }
    storage = "Microsoft.Storage/storageAccounts"
    for role in (
        STORAGE_BLOB_DATA_OWNER,
        STORAGE_QUEUE_DATA_CONTRIBUTOR,
        STORAGE_TABLE_DATA_CONTRIBUTOR,
    ):
        assert assigned[role][:2] == (storage, "ServicePrincipal")
    assert assigned[MONITORING_METRICS_PUBLISHER][:2] == (
        "Microsoft.Insights/components",
        "ServicePrincipal",
    )
    assert assigned[KEY_VAULT_SECRETS_USER][:2] == ("Microsoft.KeyVault/vaults", "ServicePrincipal")
    # The principal is the user-assigned identity's: main.bicep passes identity.bicep's output,
    # which is the identity resource's principalId.
    assert "identityPrincipalId" in bicep("app/rbac.bicep")["parameters"]
    assert module_params("rbac")["identityPrincipalId"] == "identity.outputs.principalId"
    assert bicep("main.bicep")["modules"]["identity"]["detail"]["path"] == "app/identity.bicep"
    identity_file = bicep("app/identity.bicep")
    symbol = identity_symbol(identity_file)
    assert (
        dotted(identity_file["outputs"]["principalId"]["value"])
        == f"{symbol}.properties.principalId"
    )


def test_the_deployer_gets_the_storage_roles_only_when_given() -> None:
    rbac = bicep("app/rbac.bicep")
    condition, when_empty, otherwise = conditional(
        rbac["variables"]["deployerStorageRoleIds"]["value"]
    )
    assert function_call(condition) == ("empty", {"item_to_test": "deployerPrincipalId"})
    assert when_empty == []
    roles = {rbac["variables"][name]["value"] for name in otherwise}
    assert roles == {
        STORAGE_BLOB_DATA_OWNER,
        STORAGE_QUEUE_DATA_CONTRIBUTOR,
        STORAGE_TABLE_DATA_CONTRIBUTOR,
    }
    loop = rbac["resources"]["deployerStorageRoles"]["config"]
    assert loop["loop_type"]["detail"] == {
        "item_name": "role",
        "array_name": "deployerStorageRoleIds",
    }
    properties = loop["config"]["properties"]
    assert loop["config"]["scope"] == "storage"
    assert properties["principalId"] == "deployerPrincipalId"
    assert function_call(properties["roleDefinitionId"])[1]["resource_name_1"] == "role"
    assert module_params("rbac")["deployerPrincipalId"] == "principalId"


def test_the_app_runs_as_the_identity_and_reaches_storage_with_it() -> None:
    api = bicep("app/api.bicep")
    symbol = identity_symbol(api)
    assert api["resources"][symbol]["existing"] is True
    assert api["resources"][symbol]["config"]["name"] == "identityName"
    assert module_params("api")["identityName"] == "identity.outputs.name"
    app = function_app()
    assert app["identity"]["type"] == "UserAssigned"
    assert list(app["identity"]["userAssignedIdentities"]) == [f"'${{{symbol}.id}}'"]

    settings, premium = api_settings()
    storage_settings = {
        name: value for name, value in settings.items() if name.startswith("AzureWebJobsStorage")
    }
    assert storage_settings == {
        "AzureWebJobsStorage__accountName": "storage.name",
        "AzureWebJobsStorage__blobServiceUri": "storage.properties.primaryEndpoints.blob",
        "AzureWebJobsStorage__queueServiceUri": "storage.properties.primaryEndpoints.queue",
        "AzureWebJobsStorage__tableServiceUri": "storage.properties.primaryEndpoints.table",
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": f"{symbol}.properties.clientId",
    }
    assert not any(name.startswith("AzureWebJobsStorage") for name in premium)
    assert api["resources"]["storage"]["type"] == "Microsoft.Storage/storageAccounts"
    # Flex Consumption fetches the deployment package as the identity too.
    _, flex, _ = conditional(app["properties"]["functionAppConfig"])
    authentication = flex["deployment"]["storage"]["authentication"]
    assert authentication["type"] == "UserAssignedIdentity"
    assert dotted(authentication["userAssignedIdentityResourceId"]) == f"{symbol}.id"


def test_the_storage_account_refuses_shared_keys() -> None:
    (account,) = resources_of_type(
        bicep("app/storage.bicep"), "Microsoft.Storage/storageAccounts"
    ).values()
    properties = account["config"]["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["defaultToOAuthAuthentication"] is True
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: str(path.relative_to(INFRA)))
def test_no_template_emits_a_key_or_a_keyed_connection_string(path: Any) -> None:
    relative = str(path.relative_to(INFRA))
    parsed = bicep(relative)
    text = path.read_text()
    assert not KEY_MATERIAL.search(text)
    every_string = list(strings(parsed))
    assert every_string, "pycep found nothing in the file"
    assert not [found for found in every_string if KEY_MATERIAL.search(found)]
    # Outputs carry names only: never a secure parameter, a secret or a connection string.
    secure = {name for name in parsed.get("parameters", {}) if decorator(parsed, name, "secure")}
    for name, output in parsed.get("outputs", {}).items():
        values = set(strings(output["value"])) | {str(dotted(output["value"]))}
        assert not values & secure, name
        assert not any(
            re.search(r"ConnectionString|getSecret|properties\.value", value) for value in values
        ), name


def test_no_setting_is_a_keyed_connection() -> None:
    settings, premium = api_settings()
    names = settings.keys() | premium.keys()
    # A bare AzureWebJobsStorage, the Azure Files content share and the legacy dashboard take
    # connection strings with account keys.
    assert not names & {
        "AzureWebJobsStorage",
        "AzureWebJobsDashboard",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE",
    }
    for name, value in (settings | premium).items():
        assert not KEY_MATERIAL.search(json.dumps(value)), name


def test_monitoring_takes_entra_tokens_only() -> None:
    monitoring = bicep("app/monitoring.bicep")
    (workspace,) = resources_of_type(
        monitoring, "Microsoft.OperationalInsights/workspaces"
    ).values()
    assert workspace["config"]["properties"]["features"]["disableLocalAuth"] is True
    (insights,) = resources_of_type(monitoring, "Microsoft.Insights/components").values()
    assert insights["config"]["properties"]["DisableLocalAuth"] is True
    settings, _ = api_settings()
    symbol = identity_symbol(bicep("app/api.bicep"))
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        f"ClientId=${{{symbol}.properties.clientId}};Authorization=AAD"
    )
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == (
        "applicationInsights.properties.ConnectionString"
    )


def test_the_management_key_is_a_key_vault_reference() -> None:
    api = bicep("app/api.bicep")
    settings, _ = api_settings()
    secret = api["resources"]["managementKeySecret"]
    assert secret["type"] == "Microsoft.KeyVault/vaults/secrets" and secret["existing"] is True
    assert secret["config"] == {"parent": "vault", "name": "managementKeySecretName"}
    # The setting durable_ext reads (management_functions.py), resolved as the user-assigned identity.
    assert settings["DURABLE_EXT_SYSTEM_KEY"] == (
        "@Microsoft.KeyVault(SecretUri=${managementKeySecret.properties.secretUri})"
    )
    symbol = identity_symbol(api)
    assert dotted(function_app()["properties"]["keyVaultReferenceIdentity"]) == f"{symbol}.id"
    # The vault is in RBAC mode and holds the key that main.bicep takes as a secure parameter.
    keyvault = bicep("app/keyvault.bicep")
    (vault,) = resources_of_type(keyvault, "Microsoft.KeyVault/vaults").values()
    assert vault["config"]["properties"]["enableRbacAuthorization"] is True
    (stored,) = resources_of_type(keyvault, "Microsoft.KeyVault/vaults/secrets").values()
    assert stored["config"]["properties"]["value"] == "secretValue"
    assert decorator(keyvault, "secretValue", "secure") is True
    assert module_params("keyVault")["secretValue"] == "managementKey"
    assert (
        module_params("keyVault")["secretName"] == module_params("api")["managementKeySecretName"]
    )
    main = bicep("main.bicep")
    assert decorator(main, "managementKey", "secure") is True
    assert decorator(main, "managementKey", "min_length") >= 32
    assert parameter_default(main, "managementKey") is None
    generate = decorator(main, "managementKey", "metadata")["azd"]
    assert generate["type"] == "generate" and generate["config"]["length"] >= 32


def test_the_heartbeat_schedule_is_the_setting_the_engine_reads() -> None:
    settings, _ = api_settings()
    assert settings[HEARTBEAT_SCHEDULE_SETTING] == "heartbeatSchedule"
    assert module_params("api")["heartbeatSchedule"] == "heartbeatSchedule"


def test_flex_consumption_keeps_an_instance_ready_for_the_engine() -> None:
    api = bicep("app/api.bicep")
    condition, flex_sku, _ = conditional(api["resources"]["plan"]["config"]["sku"])
    assert condition == "isFlex"
    assert flex_sku == {"name": "FC1", "tier": "FlexConsumption"}
    condition, flex, _ = conditional(function_app()["properties"]["functionAppConfig"])
    assert condition == "isFlex"
    assert flex["scaleAndConcurrency"]["alwaysReady"] == "alwaysReady"
    groups = function_call(api["variables"]["alwaysReady"]["value"])
    assert groups == ("concat", {"arg_1": "wakeupAlwaysReady", "arg_2": "httpAlwaysReady"})
    condition, wakeup, none = conditional(api["variables"]["wakeupAlwaysReady"]["value"])
    # The queue trigger DFApp registers for the engine (durable_ext.host.wake_up).
    assert wakeup == [
        {"name": f"function:{WAKE_UP_FUNCTION}", "instanceCount": "wakeupAlwaysReadyInstances"}
    ]
    assert none == []
    main = bicep("main.bicep")
    assert parameter_default(main, "wakeupAlwaysReadyInstances") == 1
    assert module_params("api")["wakeupAlwaysReadyInstances"] == "wakeupAlwaysReadyInstances"
    _, http, _ = conditional(api["variables"]["httpAlwaysReady"]["value"])
    assert http == [{"name": "http", "instanceCount": "httpAlwaysReadyInstances"}]
    assert parameter_default(main, "httpAlwaysReadyInstances") == 0


def test_python_3_11_on_both_plans() -> None:
    api = bicep("app/api.bicep")
    assert api["variables"]["pythonVersion"]["value"] == "3.11"
    _, flex, _ = conditional(function_app()["properties"]["functionAppConfig"])
    assert flex["runtime"] == {"name": "python", "version": "pythonVersion"}
    _, _, premium = conditional(function_app()["properties"]["siteConfig"]["linuxFxVersion"])
    assert premium == "Python|${pythonVersion}"
    assert function_app()["kind"] == "functionapp,linux"


def test_elastic_premium_is_a_parameter() -> None:
    main = bicep("main.bicep")
    assert decorator(main, "hostingPlan", "allowed") == ["FlexConsumption", "ElasticPremium"]
    assert parameter_default(main, "hostingPlan") == "FlexConsumption"
    assert module_params("api")["hostingPlan"] == "hostingPlan"
    assert decorator(main, "premiumMinimumInstances", "min_value") >= 1
    api = bicep("app/api.bicep")
    assert dotted(api["variables"]["isFlex"]["value"]) == {
        "operator": {
            "type": "equals",
            "operands": {"operand_1": "hostingPlan", "operand_2": "FlexConsumption"},
        }
    }
    _, _, premium_sku = conditional(api["resources"]["plan"]["config"]["sku"])
    assert premium_sku == {
        "name": "EP1",
        "tier": "ElasticPremium",
        "capacity": "premiumMinimumInstances",
    }
    site_config = function_app()["properties"]["siteConfig"]
    _, _, minimum = conditional(site_config["minimumElasticInstanceCount"])
    assert minimum == "premiumMinimumInstances"
    _, flex_settings, premium_settings = conditional(site_config["appSettings"])
    assert flex_settings == "commonSettings"
    assert function_call(premium_settings) == (
        "concat",
        {"arg_1": "commonSettings", "arg_2": "premiumSettings"},
    )
    _, premium = api_settings()
    symbol = identity_symbol(api)
    assert premium["FUNCTIONS_EXTENSION_VERSION"] == "~4"
    assert premium["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert premium["WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"] == f"{symbol}.id"


def test_azd_project_deploys_the_app_root_to_the_tagged_function_app() -> None:
    project = yaml.safe_load((INFRA.parent / "azure.yaml").read_text())
    assert project["services"] == {
        "api": {"project": ".", "language": "python", "host": "function"}
    }
    # azd finds the resource to deploy to by this tag.
    kind, arguments = function_call(function_app()["tags"])
    assert kind == "union" and arguments["arg_2"] == {"'azd-service-name'": "api"}
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert parameters["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    assert set(parameters) <= set(bicep("main.bicep")["parameters"])


def test_every_checkov_skip_gives_its_reason() -> None:
    skips = [
        line.strip()
        for path in bicep_files()
        for line in path.read_text().splitlines()
        if "checkov:skip=" in line
    ]
    assert skips
    for skip in skips:
        match = re.fullmatch(r"//checkov:skip=(CKV2?_AZURE_\d+):(.+)", skip)
        assert match and len(match.group(2).split()) >= 8, skip
