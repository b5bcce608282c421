// @generated automatically by Diesel CLI.

diesel::table! {
    activities (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        actor_user_id -> Nullable<Uuid>,
        actor_api_key_id -> Nullable<Uuid>,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        metadata -> Jsonb,
        ip_address -> Nullable<Inet>,
        user_agent -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    billing_events (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        kind -> Text,
        from_plan -> Nullable<Text>,
        to_plan -> Text,
        actor_user_id -> Nullable<Uuid>,
        period_start -> Timestamptz,
        period_end -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    conversations (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        wa_id -> Text,
        name -> Nullable<Text>,
        phone_number_id -> Nullable<Text>,
        status -> Text,
        message_count -> Int4,
        unread_count -> Int4,
        last_message_at -> Nullable<Timestamptz>,
        last_message_preview -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    credentials (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        kind -> Text,
        public_data -> Jsonb,
        secret_nonce -> Bytea,
        secret_ciphertext -> Bytea,
        data_key_id -> Uuid,
        masked_hints -> Jsonb,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    environment_variables (environment_id, name) {
        environment_id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        value -> Nullable<Text>,
        secret_credential_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        secret_ref -> Nullable<Jsonb>,
    }
}

diesel::table! {
    execution_failure_notices (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        workflow_id -> Uuid,
        failures -> Int4,
        execution_ids -> Array<Nullable<Uuid>>,
        first_failed_at -> Timestamptz,
        last_failed_at -> Timestamptz,
        last_error -> Nullable<Text>,
        due_at -> Timestamptz,
        closed_at -> Nullable<Timestamptz>,
        emailed_at -> Nullable<Timestamptz>,
        webhook_sent_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    execution_steps (id) {
        id -> Uuid,
        execution_id -> Uuid,
        workspace_id -> Uuid,
        position -> Int4,
        node_id -> Text,
        node_type -> Text,
        input -> Nullable<Jsonb>,
        output -> Nullable<Jsonb>,
        error -> Nullable<Text>,
        route -> Nullable<Text>,
        started_at -> Timestamptz,
        finished_at -> Timestamptz,
        effect_key -> Nullable<Text>,
        logs -> Nullable<Jsonb>,
    }
}

diesel::table! {
    executions (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        workflow_id -> Uuid,
        version -> Int4,
        status -> Text,
        trigger_kind -> Text,
        input -> Jsonb,
        output -> Nullable<Jsonb>,
        error -> Nullable<Text>,
        attempt -> Int4,
        max_attempts -> Int4,
        retry_of -> Nullable<Uuid>,
        due_at -> Timestamptz,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamptz>,
        cancel_requested -> Bool,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        environment_id -> Uuid,
        lease_token -> Int8,
        timeout_seconds -> Nullable<Int4>,
        save_successful_steps -> Bool,
        parent_execution_id -> Nullable<Uuid>,
        waiting_for -> Nullable<Uuid>,
    }
}

diesel::table! {
    log_destination_deliveries (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        destination_id -> Uuid,
        attempted_at -> Timestamptz,
        events -> Int4,
        outcome -> Text,
        status_code -> Nullable<Int4>,
        latency_ms -> Int4,
        error -> Nullable<Text>,
        test -> Bool,
    }
}

diesel::table! {
    log_destinations (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        kind -> Text,
        event_types -> Array<Nullable<Text>>,
        enabled -> Bool,
        config -> Jsonb,
        secret_headers_credential_id -> Nullable<Uuid>,
        signing_secret_credential_id -> Nullable<Uuid>,
        previous_secret_credential_id -> Nullable<Uuid>,
        previous_secret_expires_at -> Nullable<Timestamptz>,
        status -> Text,
        failing_since -> Nullable<Timestamptz>,
        last_delivered_at -> Nullable<Timestamptz>,
        revision -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_sessions (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        api_key_id -> Uuid,
        protocol_version -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    messages (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        conversation_id -> Uuid,
        message_id -> Text,
        direction -> Text,
        message_type -> Text,
        body -> Nullable<Text>,
        payload -> Jsonb,
        status -> Nullable<Text>,
        sent_at -> Timestamptz,
        event_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> Uuid,
        seq -> Int8,
        workspace_id -> Uuid,
        destination -> Text,
        kind -> Text,
        payload -> Jsonb,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    outbox_destinations (destination) {
        destination -> Text,
        workspace_id -> Uuid,
        locked_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    permissions (id) {
        id -> Uuid,
        code -> Text,
        description -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    plans (id) {
        id -> Uuid,
        code -> Text,
        name -> Text,
        monthly_price_cents -> Int4,
        limits -> Jsonb,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    profile_permissions (profile_id, permission_id) {
        profile_id -> Uuid,
        permission_id -> Uuid,
    }
}

diesel::table! {
    profiles (id) {
        id -> Uuid,
        code -> Text,
        name -> Text,
        description -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        family_id -> Uuid,
        token_hash -> Bytea,
        workspace_id -> Nullable<Uuid>,
        user_agent -> Nullable<Text>,
        ip_address -> Nullable<Inet>,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
        auth_method -> Text,
    }
}

diesel::table! {
    sso_login_states (state_hash) {
        state_hash -> Bytea,
        workspace_id -> Uuid,
        nonce -> Text,
        code_verifier -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sso_tickets (ticket_hash) {
        ticket_hash -> Bytea,
        workspace_id -> Uuid,
        user_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        plan_id -> Uuid,
        status -> Text,
        current_period_start -> Timestamptz,
        current_period_end -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    user_security_settings (user_id) {
        user_id -> Uuid,
        failed_login_attempts -> Int4,
        locked_until -> Nullable<Timestamptz>,
        password_changed_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    user_settings (user_id) {
        user_id -> Uuid,
        locale -> Text,
        timezone -> Text,
        theme -> Text,
        notifications -> Jsonb,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Text,
        display_name -> Text,
        default_workspace_id -> Nullable<Uuid>,
        email_verified_at -> Nullable<Timestamptz>,
        last_login_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_dedupe_keys (registration_id, key) {
        registration_id -> Uuid,
        key -> Text,
        event_id -> Uuid,
    }
}

diesel::table! {
    webhook_events (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        registration_id -> Uuid,
        verdict -> Text,
        reason -> Nullable<Text>,
        body_digest -> Text,
        headers -> Jsonb,
        body -> Bytea,
        payload -> Nullable<Jsonb>,
        execution_id -> Nullable<Uuid>,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_registrations (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        provider -> Text,
        public_id -> Text,
        verify_token_hash -> Nullable<Text>,
        signing_credential_id -> Nullable<Uuid>,
        workflow_id -> Nullable<Uuid>,
        last_workflow_id -> Nullable<Uuid>,
        response_mode -> Text,
        enabled -> Bool,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        environment_id -> Uuid,
    }
}

diesel::table! {
    weekly_usage_reports (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        slot -> Timestamptz,
        sent_to -> Array<Nullable<Text>>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    workflow_deployments (workflow_id, environment_id) {
        workflow_id -> Uuid,
        environment_id -> Uuid,
        workspace_id -> Uuid,
        version -> Int4,
        activated_by -> Nullable<Uuid>,
        activated_at -> Timestamptz,
    }
}

diesel::table! {
    workflow_schedule_fires (schedule_id, slot) {
        schedule_id -> Uuid,
        slot -> Timestamptz,
        workspace_id -> Uuid,
        outcome -> Nullable<Text>,
        execution_id -> Nullable<Uuid>,
        fired_at -> Timestamptz,
    }
}

diesel::table! {
    workflow_schedules (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        workflow_id -> Uuid,
        environment_id -> Uuid,
        version -> Int4,
        cron -> Nullable<Text>,
        timezone -> Nullable<Text>,
        interval_seconds -> Nullable<Int4>,
        next_at -> Nullable<Timestamptz>,
        last_slot -> Nullable<Timestamptz>,
        last_fired_at -> Nullable<Timestamptz>,
        last_outcome -> Nullable<Text>,
        last_execution_id -> Nullable<Uuid>,
        last_skipped -> Int8,
        quota_refused_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workflow_versions (workflow_id, version) {
        workflow_id -> Uuid,
        workspace_id -> Uuid,
        version -> Int4,
        definition -> Jsonb,
        checksum -> Text,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    workflows (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        description -> Text,
        archived_at -> Nullable<Timestamptz>,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        error_workflow_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    workspace_api_key_audit (id) {
        id -> Uuid,
        key_id -> Uuid,
        workspace_id -> Uuid,
        action -> Text,
        actor_user_id -> Nullable<Uuid>,
        ip_address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        details -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    workspace_api_keys (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        prefix -> Text,
        last_four -> Text,
        secret_hash -> Bytea,
        scopes -> Array<Nullable<Text>>,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        previous_prefix -> Nullable<Text>,
        previous_hash -> Nullable<Bytea>,
        previous_valid_until -> Nullable<Timestamptz>,
        environment_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    workspace_connectors (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        version -> Text,
        manifest -> Jsonb,
        enabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workspace_data_keys (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        version -> Int4,
        wrapped_key -> Bytea,
        kek_id -> Text,
        active -> Bool,
        created_at -> Timestamptz,
        retired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    workspace_environments (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        description -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        is_default -> Bool,
    }
}

diesel::table! {
    workspace_integration_events (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        kind -> Text,
        integration_id -> Nullable<Uuid>,
        event -> Text,
        details -> Jsonb,
        actor_user_id -> Nullable<Uuid>,
        actor_api_key_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    workspace_ldap_configs (workspace_id) {
        workspace_id -> Uuid,
        url -> Text,
        start_tls -> Bool,
        bind_dn -> Text,
        bind_password_id -> Uuid,
        base_dn -> Text,
        user_filter -> Text,
        email_attribute -> Text,
        name_attribute -> Text,
        group_base_dn -> Nullable<Text>,
        group_filter -> Text,
        role_mapping -> Jsonb,
        default_role -> Text,
        sync_interval_minutes -> Int4,
        enabled -> Bool,
        last_sync_at -> Nullable<Timestamptz>,
        last_sync_result -> Nullable<Jsonb>,
        sync_claimed_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workspace_ldap_members (workspace_id, user_id) {
        workspace_id -> Uuid,
        user_id -> Uuid,
        username -> Text,
        dn -> Text,
        mapped_role -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workspace_members (workspace_id, user_id) {
        workspace_id -> Uuid,
        user_id -> Uuid,
        profile_id -> Uuid,
        invited_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workspace_secret_providers (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        kind -> Text,
        config -> Jsonb,
        credentials_id -> Uuid,
        enabled -> Bool,
        cache_ttl_seconds -> Int4,
        revision -> Int8,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workspace_settings (workspace_id) {
        workspace_id -> Uuid,
        timezone -> Text,
        locale -> Text,
        allow_internal_network -> Bool,
        settings -> Jsonb,
        updated_at -> Timestamptz,
        failure_webhook_secret_id -> Nullable<Uuid>,
        failure_webhook_previous_secret_id -> Nullable<Uuid>,
        failure_webhook_previous_secret_expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    workspace_sso_configs (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        issuer -> Text,
        client_id -> Text,
        client_secret_id -> Uuid,
        scopes -> Jsonb,
        allowed_domains -> Jsonb,
        groups_claim -> Text,
        role_mapping -> Jsonb,
        default_role -> Text,
        jit_provisioning -> Bool,
        enforce_sso -> Bool,
        enabled -> Bool,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workspace_usage_alert_events (id) {
        id -> Uuid,
        alert_id -> Uuid,
        workspace_id -> Uuid,
        period_start -> Timestamptz,
        threshold_percent -> Int4,
        used -> Int8,
        limit_value -> Int8,
        status -> Text,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    workspace_usage_alerts (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        metric -> Text,
        threshold_percent -> Int4,
        channel -> Text,
        target -> Text,
        secret_credential_id -> Nullable<Uuid>,
        enabled -> Bool,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        previous_secret_credential_id -> Nullable<Uuid>,
        previous_secret_expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    workspace_usage_snapshots (workspace_id, day) {
        workspace_id -> Uuid,
        day -> Date,
        metrics -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workspaces (id) {
        id -> Uuid,
        name -> Text,
        slug -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        archived_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(activities -> users (actor_user_id));
diesel::joinable!(activities -> workspaces (workspace_id));
diesel::joinable!(billing_events -> users (actor_user_id));
diesel::joinable!(billing_events -> workspaces (workspace_id));
diesel::joinable!(conversations -> workspaces (workspace_id));
diesel::joinable!(credentials -> users (created_by));
diesel::joinable!(credentials -> workspace_data_keys (data_key_id));
diesel::joinable!(credentials -> workspaces (workspace_id));
diesel::joinable!(environment_variables -> credentials (secret_credential_id));
diesel::joinable!(environment_variables -> workspace_environments (environment_id));
diesel::joinable!(environment_variables -> workspaces (workspace_id));
diesel::joinable!(execution_failure_notices -> workflows (workflow_id));
diesel::joinable!(execution_failure_notices -> workspaces (workspace_id));
diesel::joinable!(execution_steps -> executions (execution_id));
diesel::joinable!(execution_steps -> workspaces (workspace_id));
diesel::joinable!(executions -> workspace_environments (environment_id));
diesel::joinable!(log_destination_deliveries -> log_destinations (destination_id));
diesel::joinable!(log_destination_deliveries -> workspaces (workspace_id));
diesel::joinable!(log_destinations -> workspaces (workspace_id));
diesel::joinable!(mcp_sessions -> workspace_api_keys (api_key_id));
diesel::joinable!(mcp_sessions -> workspaces (workspace_id));
diesel::joinable!(messages -> conversations (conversation_id));
diesel::joinable!(messages -> webhook_events (event_id));
diesel::joinable!(outbox -> workspaces (workspace_id));
diesel::joinable!(outbox_destinations -> workspaces (workspace_id));
diesel::joinable!(profile_permissions -> permissions (permission_id));
diesel::joinable!(profile_permissions -> profiles (profile_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(sessions -> workspaces (workspace_id));
diesel::joinable!(sso_login_states -> workspaces (workspace_id));
diesel::joinable!(sso_tickets -> users (user_id));
diesel::joinable!(sso_tickets -> workspaces (workspace_id));
diesel::joinable!(subscriptions -> plans (plan_id));
diesel::joinable!(subscriptions -> workspaces (workspace_id));
diesel::joinable!(user_security_settings -> users (user_id));
diesel::joinable!(user_settings -> users (user_id));
diesel::joinable!(users -> workspaces (default_workspace_id));
diesel::joinable!(webhook_dedupe_keys -> webhook_events (event_id));
diesel::joinable!(webhook_events -> executions (execution_id));
diesel::joinable!(webhook_events -> webhook_registrations (registration_id));
diesel::joinable!(webhook_registrations -> credentials (signing_credential_id));
diesel::joinable!(webhook_registrations -> users (created_by));
diesel::joinable!(webhook_registrations -> workspace_environments (environment_id));
diesel::joinable!(webhook_registrations -> workspaces (workspace_id));
diesel::joinable!(weekly_usage_reports -> workspaces (workspace_id));
diesel::joinable!(workflow_deployments -> users (activated_by));
diesel::joinable!(workflow_deployments -> workflows (workflow_id));
diesel::joinable!(workflow_deployments -> workspace_environments (environment_id));
diesel::joinable!(workflow_deployments -> workspaces (workspace_id));
diesel::joinable!(workflow_schedule_fires -> executions (execution_id));
diesel::joinable!(workflow_schedule_fires -> workflow_schedules (schedule_id));
diesel::joinable!(workflow_schedule_fires -> workspaces (workspace_id));
diesel::joinable!(workflow_schedules -> executions (last_execution_id));
diesel::joinable!(workflow_schedules -> workflows (workflow_id));
diesel::joinable!(workflow_schedules -> workspace_environments (environment_id));
diesel::joinable!(workflow_schedules -> workspaces (workspace_id));
diesel::joinable!(workflow_versions -> users (created_by));
diesel::joinable!(workflow_versions -> workflows (workflow_id));
diesel::joinable!(workflow_versions -> workspaces (workspace_id));
diesel::joinable!(workflows -> users (created_by));
diesel::joinable!(workflows -> workspaces (workspace_id));
diesel::joinable!(workspace_api_key_audit -> users (actor_user_id));
diesel::joinable!(workspace_api_key_audit -> workspace_api_keys (key_id));
diesel::joinable!(workspace_api_key_audit -> workspaces (workspace_id));
diesel::joinable!(workspace_api_keys -> users (created_by));
diesel::joinable!(workspace_api_keys -> workspace_environments (environment_id));
diesel::joinable!(workspace_api_keys -> workspaces (workspace_id));
diesel::joinable!(workspace_connectors -> workspaces (workspace_id));
diesel::joinable!(workspace_data_keys -> workspaces (workspace_id));
diesel::joinable!(workspace_environments -> workspaces (workspace_id));
diesel::joinable!(workspace_integration_events -> users (actor_user_id));
diesel::joinable!(workspace_integration_events -> workspaces (workspace_id));
diesel::joinable!(workspace_ldap_configs -> credentials (bind_password_id));
diesel::joinable!(workspace_ldap_configs -> workspaces (workspace_id));
diesel::joinable!(workspace_ldap_members -> users (user_id));
diesel::joinable!(workspace_ldap_members -> workspaces (workspace_id));
diesel::joinable!(workspace_members -> profiles (profile_id));
diesel::joinable!(workspace_members -> workspaces (workspace_id));
diesel::joinable!(workspace_secret_providers -> credentials (credentials_id));
diesel::joinable!(workspace_secret_providers -> users (created_by));
diesel::joinable!(workspace_secret_providers -> workspaces (workspace_id));
diesel::joinable!(workspace_settings -> workspaces (workspace_id));
diesel::joinable!(workspace_sso_configs -> credentials (client_secret_id));
diesel::joinable!(workspace_sso_configs -> users (created_by));
diesel::joinable!(workspace_sso_configs -> workspaces (workspace_id));
diesel::joinable!(workspace_usage_alert_events -> workspace_usage_alerts (alert_id));
diesel::joinable!(workspace_usage_alert_events -> workspaces (workspace_id));
diesel::joinable!(workspace_usage_alerts -> users (created_by));
diesel::joinable!(workspace_usage_alerts -> workspaces (workspace_id));
diesel::joinable!(workspace_usage_snapshots -> workspaces (workspace_id));

diesel::allow_tables_to_appear_in_same_query!(
    activities,
    billing_events,
    conversations,
    credentials,
    environment_variables,
    execution_failure_notices,
    execution_steps,
    executions,
    log_destination_deliveries,
    log_destinations,
    mcp_sessions,
    messages,
    outbox,
    outbox_destinations,
    permissions,
    plans,
    profile_permissions,
    profiles,
    sessions,
    sso_login_states,
    sso_tickets,
    subscriptions,
    user_security_settings,
    user_settings,
    users,
    webhook_dedupe_keys,
    webhook_events,
    webhook_registrations,
    weekly_usage_reports,
    workflow_deployments,
    workflow_schedule_fires,
    workflow_schedules,
    workflow_versions,
    workflows,
    workspace_api_key_audit,
    workspace_api_keys,
    workspace_connectors,
    workspace_data_keys,
    workspace_environments,
    workspace_integration_events,
    workspace_ldap_configs,
    workspace_ldap_members,
    workspace_members,
    workspace_secret_providers,
    workspace_settings,
    workspace_sso_configs,
    workspace_usage_alert_events,
    workspace_usage_alerts,
    workspace_usage_snapshots,
    workspaces,
);
