//! The process's memory allocator: mimalloc, called the way the system
//! allocator is.
//!
//! A request allocates and frees many small values across threads. mimalloc
//! replaced glibc's malloc when, under load, glibc's free lists took a
//! tenth of a request's time; with the request path as it is now the two
//! are close (mimalloc 2–3% ahead in turns under wrk, `benches/README.md`,
//! "Caches"). The `mimalloc` crate's own
//! `MiMalloc` hands every allocation to `mi_malloc_aligned`, whose aligned
//! path tries a free block's alignment and falls back before it reaches the
//! plain allocation. Nearly every Rust allocation asks for an alignment that
//! `mi_malloc` gives anyway (at most 16 bytes, and no more than its size), so
//! [`MiMalloc`] sends those straight to `mi_malloc` — as the standard
//! library's `System` allocator does with `malloc` — and only the rest to
//! the aligned calls.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The largest alignment `mi_malloc` guarantees for a block at least that
/// large (`MI_MAX_ALIGN_SIZE`, `sizeof(max_align_t)` on the targets we build).
const MALLOC_ALIGN: usize = 16;

/// mimalloc as the global allocator ([module docs](self)).
pub struct MiMalloc;

/// Whether plain `mi_malloc`/`mi_realloc` already meet `layout`'s alignment
/// for a block of `size` bytes.
#[inline]
fn malloc_aligns(align: usize, size: usize) -> bool {
    align <= MALLOC_ALIGN && align <= size
}

/// `plain(size)` where it gives `layout`'s alignment, else `aligned(size, align)`.
///
/// # Safety
///
/// As `GlobalAlloc::alloc`: `layout` has a non-zero size.
#[inline(always)]
unsafe fn allocate(
    layout: Layout,
    plain: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    // SAFETY: mimalloc's allocation functions take any size.
    unsafe {
        if malloc_aligns(layout.align(), layout.size()) {
            plain(layout.size()).cast()
        } else {
            aligned(layout.size(), layout.align()).cast()
        }
    }
}

// SAFETY: every pointer handed out comes from mimalloc with the layout's size
// and alignment (see `malloc_aligns`), and is given back to mimalloc only.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees are `allocate`'s.
        unsafe { allocate(layout, mi::mi_malloc, mi::mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe { allocate(layout, mi::mi_zalloc, mi::mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator, so from mimalloc; the new
        // block keeps the old alignment.
        unsafe {
            if malloc_aligns(layout.align(), new_size) {
                mi::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block honours its layout's alignment, through allocation,
    /// zeroed allocation and growth and shrinking, on both paths.
    #[test]
    fn blocks_are_aligned_as_their_layouts_ask() {
        let alloc = MiMalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in [1, 3, 8, 15, 16, 24, 100, 4096, 100_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: the layouts have non-zero sizes; every block is
                // freed with the layout it was allocated with.
                unsafe {
                    let p = alloc.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc({size}, {align})");
                    p.write_bytes(0xa5, size);
                    let grown = alloc.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "realloc({size}, {align})");
                    assert!((0..size).all(|i| *grown.add(i) == 0xa5), "realloc kept the bytes");
                    let grown_layout = Layout::from_size_align(size * 3, align).unwrap();
                    let shrunk = alloc.realloc(grown, grown_layout, size.div_ceil(2));
                    assert_eq!(shrunk as usize % align, 0, "shrink({size}, {align})");
                    alloc.dealloc(shrunk, Layout::from_size_align(size.div_ceil(2), align).unwrap());

                    let z = alloc.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "alloc_zeroed({size}, {align})");
                    assert!((0..size).all(|i| *z.add(i) == 0), "alloc_zeroed zeroes");
                    alloc.dealloc(z, layout);
                }
            }
        }
    }
}
