//! The echo test room as the registry makes it: every join of its name gets a private
//! room of its own (`CoreParams::echo`), where the participant hears itself a second
//! later and sees its own camera.

use std::sync::atomic::Ordering;

use chorus_room_api::{JoinError, JoinRequest};
use tokio::sync::oneshot;

use super::RoomRegistry;
use crate::command::{RoomCommand, Session};

impl RoomRegistry {
    pub(super) fn is_echo_room(&self, room: &str) -> bool {
        self.inner.config.echo_room.as_deref() == Some(room)
    }

    /// The echo room: a private room of one for every join, registered under a key no
    /// room name can take (`echo123~7`), so that no one else can reach it.
    pub(super) async fn join_echo(
        &self,
        room: &str,
        who: JoinRequest,
    ) -> Result<Session, JoinError> {
        self.check_capacity().map_err(JoinError::TooManyRooms)?;
        let n = self.inner.echo_rooms.fetch_add(1, Ordering::Relaxed);
        let key = format!("{room}~{n}");
        let handle = self.spawn(&key, room, 1, false, true);
        self.inner.rooms.insert(key, handle.clone());
        let (tx, rx) = oneshot::channel();
        let req = RoomCommand::Join {
            req: who,
            reply: tx,
        };
        handle
            .commands
            .send(req)
            .await
            .map_err(|_| JoinError::RoomClosed)?;
        rx.await.map_err(|_| JoinError::RoomClosed)?
    }
}
