//! Boxing a large future without copying it: the request path boxes its
//! largest futures (the handler's, the function call's, a fresh instance's
//! instantiation) so the futures around them stay small.

/// Boxes the future `make` returns, building it in its box.
///
/// `Box::pin(f())` builds the future on the stack and then copies all of it
/// into the box, every byte of its largest state, though a future that has
/// not started holds only its arguments. Allocating first lets the compiler
/// build the future in place (it does, in release builds: the copies of a
/// request's two boxed futures, 2.3 KB, left the request path's profile).
#[inline(always)]
pub(crate) fn boxed_in_place<F>(make: impl FnOnce() -> F) -> std::pin::Pin<Box<F>> {
    let slot = Box::new_uninit();
    Box::into_pin(Box::write(slot, make()))
}
