//! `/api/workspaces*` (the caller's workspaces) and `/api/workspace/*` (the active one:
//! members and the activity log).

use actix_web::web::{Data, Path, Query};
use actix_web::{HttpResponse, delete, get, patch, post};
use fluxolab_kernel::{Page, PageRequest, Unauthenticated, UserId, WorkspaceId};
use fluxolab_workspace::Role;
use fluxolab_workspace::model::{Activity, ActivityFilter, Member, Workspace};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::ApiError;
use crate::extract::{ActiveWorkspace, CurrentUser, Services};
use crate::json::Json;
use crate::problem::Problem;

/// A workspace, as the caller sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceResponse {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    /// The caller's role.
    pub role: String,
    /// The plan code.
    pub plan: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Workspace> for WorkspaceResponse {
    fn from(workspace: Workspace) -> Self {
        Self {
            id: workspace.id.as_uuid(),
            name: workspace.name,
            slug: workspace.slug,
            role: workspace.role.code().to_owned(),
            plan: workspace.plan,
            created_at: workspace.created_at,
            updated_at: workspace.updated_at,
        }
    }
}

/// A page of items.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PageResponse<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

impl<T, U: From<T>> From<Page<T>> for PageResponse<U> {
    fn from(page: Page<T>) -> Self {
        Self {
            items: page.items.into_iter().map(U::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// `POST /api/workspaces` and `PATCH /api/workspaces/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceRequest {
    /// Trimmed: 1–120 characters, not only spaces.
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    pub name: String,
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^([A-Za-z0-9_-]{32})?$")]
    pub cursor: Option<String>,
}

/// Parses a `since` filter (RFC 3339).
pub fn parse_since(raw: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.map(|text| OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339))
        .transpose()
        .map_err(|_| {
            ApiError::invalid(
                "since",
                "must be an RFC 3339 time such as 2026-11-25T00:00:00Z",
            )
        })
}

/// A page request from `?limit=&cursor=`: a limit outside 1–200 or a cursor that is
/// not a `next_cursor` is refused (as the document says), not clamped.
pub fn page_request(limit: Option<u32>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    if let Some(limit) = limit
        && !(1..=fluxolab_kernel::pagination::MAX_LIMIT).contains(&limit)
    {
        return Err(ApiError::invalid(
            "limit",
            format!(
                "must be between 1 and {}",
                fluxolab_kernel::pagination::MAX_LIMIT
            ),
        ));
    }
    PageRequest::new(limit, cursor).map_err(|error| ApiError::invalid("cursor", error.to_string()))
}

/// The caller's workspaces.
#[utoipa::path(tag = "workspaces", security(("bearer" = [])), responses(
    (status = 200, description = "Every workspace the caller belongs to", body = PageResponse<WorkspaceResponse>),
))]
#[get("/api/workspaces")]
pub async fn list_workspaces(
    services: Data<Services>,
    user: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let workspaces = services.workspaces.list(user.id()).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<WorkspaceResponse> {
        items: workspaces.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

/// Creates a workspace owned by the caller (free plan, three environments).
#[utoipa::path(tag = "workspaces", security(("bearer" = [])), request_body = WorkspaceRequest, responses(
    (status = 201, description = "The workspace", body = WorkspaceResponse),
    (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workspaces")]
pub async fn create_workspace(
    services: Data<Services>,
    user: CurrentUser,
    body: Json<WorkspaceRequest>,
) -> Result<HttpResponse, ApiError> {
    let workspace = services.workspaces.create(user.id(), &body.0.name).await?;
    Ok(HttpResponse::Created().json(WorkspaceResponse::from(workspace)))
}

/// One of the caller's workspaces; any other answers 404.
#[utoipa::path(tag = "workspaces", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Workspace id")), responses(
    (status = 200, description = "The workspace", body = WorkspaceResponse),
    (status = 404, description = "No such workspace for the caller", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/workspaces/{id}")]
pub async fn get_workspace(
    services: Data<Services>,
    user: CurrentUser,
    id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let workspace = services
        .workspaces
        .get(user.id(), WorkspaceId::from_uuid(id.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(WorkspaceResponse::from(workspace)))
}

/// Renames a workspace (`settings.manage`).
#[utoipa::path(tag = "workspaces", security(("bearer" = [])), request_body = WorkspaceRequest, params(("id" = Uuid, Path, description = "Workspace id")), responses(
    (status = 200, description = "The workspace", body = WorkspaceResponse),
    (status = 403, description = "The caller may not change settings", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such workspace for the caller", body = Problem, content_type = "application/problem+json"),
))]
#[patch("/api/workspaces/{id}")]
pub async fn update_workspace(
    services: Data<Services>,
    user: CurrentUser,
    id: Path<Uuid>,
    body: Json<WorkspaceRequest>,
) -> Result<HttpResponse, ApiError> {
    let workspace = WorkspaceId::from_uuid(id.into_inner());
    let principal = services
        .workspaces
        .principal_for(user.id(), workspace)
        .await?
        .ok_or(ApiError::NotFound("workspace"))?;
    services.workspaces.rename(&principal, &body.0.name).await?;
    let updated = services.workspaces.get(user.id(), workspace).await?;
    Ok(HttpResponse::Ok().json(WorkspaceResponse::from(updated)))
}

/// Makes a workspace the caller's default (the one new tokens are active in).
#[utoipa::path(tag = "workspaces", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Workspace id")), responses(
    (status = 204, description = "Done"),
    (status = 404, description = "No such workspace for the caller", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workspaces/{id}/default")]
pub async fn set_default_workspace(
    services: Data<Services>,
    user: CurrentUser,
    id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    services
        .workspaces
        .set_default(user.id(), WorkspaceId::from_uuid(id.into_inner()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A member of the active workspace.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberResponse {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

impl From<Member> for MemberResponse {
    fn from(member: Member) -> Self {
        Self {
            user_id: member.user_id.as_uuid(),
            email: member.email,
            display_name: member.display_name,
            role: member.role.code().to_owned(),
            joined_at: member.joined_at,
        }
    }
}

/// `POST /api/workspace/members`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    /// An existing account's e-mail address.
    #[schema(format = Email, min_length = 3, max_length = 254)]
    pub email: String,
    /// `owner`, `admin`, `editor` or `viewer`.
    #[schema(value_type = String, example = "editor")]
    pub role: Role,
}

/// `PATCH /api/workspace/members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    /// `owner`, `admin`, `editor` or `viewer`.
    #[schema(value_type = String, example = "viewer")]
    pub role: Role,
}

/// Members of the active workspace.
#[utoipa::path(tag = "members", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, description = "A page of members", body = PageResponse<MemberResponse>),
))]
#[get("/api/workspace/members")]
pub async fn list_members(
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let members = services.workspaces.members(&caller.principal, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<MemberResponse>::from(members)))
}

/// Adds an existing user by e-mail (`members.manage`; owners only add owners).
#[utoipa::path(tag = "members", security(("bearer" = [])), request_body = AddMemberRequest, responses(
    (status = 201, description = "The new member", body = MemberResponse),
    (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Already a member, or the plan's `max_members` is reached (`plan_limit`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "No account with that e-mail, or an unknown role", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workspace/members")]
pub async fn add_member(
    services: Data<Services>,
    caller: ActiveWorkspace,
    body: Json<AddMemberRequest>,
) -> Result<HttpResponse, ApiError> {
    let member = services
        .workspaces
        .add_member(&caller.principal, &body.0.email, body.0.role)
        .await?;
    Ok(HttpResponse::Created().json(MemberResponse::from(member)))
}

/// Changes a member's role; the last owner cannot be demoted.
#[utoipa::path(tag = "members", security(("bearer" = [])), request_body = ChangeRoleRequest, params(("user_id" = Uuid, Path, description = "The member's user id")), responses(
    (status = 200, description = "The member", body = MemberResponse),
    (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not a member of this workspace", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The last owner", body = Problem, content_type = "application/problem+json"),
))]
#[patch("/api/workspace/members/{user_id}")]
pub async fn change_member_role(
    services: Data<Services>,
    caller: ActiveWorkspace,
    user_id: Path<Uuid>,
    body: Json<ChangeRoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let member = services
        .workspaces
        .change_role(
            &caller.principal,
            UserId::from_uuid(user_id.into_inner()),
            body.0.role,
        )
        .await?;
    Ok(HttpResponse::Ok().json(MemberResponse::from(member)))
}

/// Removes a member; the last owner cannot be removed.
#[utoipa::path(tag = "members", security(("bearer" = [])), params(("user_id" = Uuid, Path, description = "The member's user id")), responses(
    (status = 204, description = "Removed"),
    (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not a member of this workspace", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The last owner", body = Problem, content_type = "application/problem+json"),
))]
#[delete("/api/workspace/members/{user_id}")]
pub async fn remove_member(
    services: Data<Services>,
    caller: ActiveWorkspace,
    user_id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    services
        .workspaces
        .remove_member(&caller.principal, UserId::from_uuid(user_id.into_inner()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Leaves the active workspace; the last owner cannot leave.
#[utoipa::path(tag = "members", security(("bearer" = [])), responses(
    (status = 204, description = "Left"),
    (status = 409, description = "The last owner", body = Problem, content_type = "application/problem+json"),
))]
#[post("/api/workspace/members/leave")]
pub async fn leave_workspace(
    services: Data<Services>,
    caller: ActiveWorkspace,
) -> Result<HttpResponse, ApiError> {
    services
        .workspaces
        .remove_member(
            &caller.principal,
            caller
                .user
                .as_ref()
                .map(CurrentUser::id)
                .ok_or(ApiError::Unauthenticated(
                    Unauthenticated::UserTokenRequired,
                ))?,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An audit entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActivityResponse {
    pub id: Uuid,
    pub actor_user_id: Option<Uuid>,
    pub actor_api_key_id: Option<Uuid>,
    /// `noun.verb`, e.g. `member.added`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub metadata: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<Activity> for ActivityResponse {
    fn from(activity: Activity) -> Self {
        Self {
            id: activity.id,
            actor_user_id: activity.actor_user_id.map(|id| id.as_uuid()),
            actor_api_key_id: activity.actor_api_key_id.map(|id| id.as_uuid()),
            action: activity.action,
            target_type: activity.target_type,
            target_id: activity.target_id,
            metadata: activity.metadata,
            created_at: activity.created_at,
        }
    }
}

/// `GET /api/workspace/activities` filters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ActivityQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^([A-Za-z0-9_-]{32})?$")]
    pub cursor: Option<String>,
    /// Only this action, e.g. `member.added`.
    pub action: Option<String>,
    /// Only what this user did.
    pub actor: Option<Uuid>,
    /// Only entries at or after this RFC 3339 time.
    #[param(format = DateTime)]
    pub since: Option<String>,
}

/// The activity log of the active workspace, newest first.
#[utoipa::path(tag = "activities", security(("bearer" = [])), params(ActivityQuery), responses(
    (status = 200, description = "A page of activities", body = PageResponse<ActivityResponse>),
    (status = 422, description = "A bad filter", body = Problem, content_type = "application/problem+json"),
))]
#[get("/api/workspace/activities")]
pub async fn list_activities(
    services: Data<Services>,
    caller: ActiveWorkspace,
    query: Query<ActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let since = parse_since(query.since.as_deref())?;
    let filter = ActivityFilter {
        action: query.action,
        actor_user_id: query.actor.map(UserId::from_uuid),
        since,
    };
    let activities = services
        .workspaces
        .activities(&caller.principal, &filter, page)
        .await?;
    Ok(HttpResponse::Ok().json(PageResponse::<ActivityResponse>::from(activities)))
}
