//! The two pieces of socket plumbing the arrival stamps and the drop counts share: a
//! boolean `SOL_SOCKET` option, and the control message it makes the kernel attach to
//! each datagram read.

use std::io;
use std::mem::size_of;
use std::os::fd::AsRawFd;

use tokio::net::UdpSocket;

/// Turns on the boolean `SOL_SOCKET` option `name`.
pub(crate) fn enable_option(socket: &UdpSocket, name: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and an option value of the size given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The payload of the `SOL_SOCKET` control message of type `kind` among those `header`
/// carries.
///
/// # Safety
/// `header` was filled in by `recvmmsg`, its control buffer is alive, and a message of
/// type `kind` carries a `T`.
pub(crate) unsafe fn control_message<T: Copy>(
    header: &libc::msghdr,
    kind: libc::c_int,
) -> Option<T> {
    // SAFETY: walking the control messages the kernel wrote, within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == kind {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<T>()));
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}
