//! [`Arena`]: a bump allocator for plugins whose invocations are short.
//!
//! The host runs every invocation in a fresh instance and throws its memory away afterwards,
//! so a plugin does not need a general-purpose allocator to give memory back: bumping a
//! pointer is enough, and it starts in the free part of the initial linear memory, so a
//! small invocation never calls `memory.grow`. Freeing or growing the most recent block is
//! done in place (the usual pattern of a growing `String` or `Vec`); other frees are ignored
//! until the instance ends. A plugin that allocates and frees much more than it keeps (a
//! long loop over large temporary buffers) should keep Rust's default allocator.
//!
//! Opt in at the root of the plugin crate:
//!
//! ```ignore
//! #[cfg(target_arch = "wasm32")]
//! #[global_allocator]
//! static ALLOC: pharos_sdk::arena::Arena = pharos_sdk::arena::Arena::new();
//! ```

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

/// Size of a WebAssembly page.
pub const PAGE: usize = 64 * 1024;

/// Where an arena's memory comes from: the linear memory on wasm32, a buffer in tests.
pub trait Pages {
    /// First free byte address and end of the memory that exists now.
    fn initial(&self) -> (usize, usize);
    /// Adds `pages` pages at the end; false when the memory cannot grow.
    fn grow(&self, pages: usize) -> bool;
}

/// The linear memory of this instance, free from the end of the static data on.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinearMemory;

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    /// Set by the linker: the first address after the stack and the static data.
    static __heap_base: u8;
}

#[cfg(target_arch = "wasm32")]
impl Pages for LinearMemory {
    fn initial(&self) -> (usize, usize) {
        let base = &raw const __heap_base as usize;
        (base, core::arch::wasm32::memory_size(0) * PAGE)
    }

    fn grow(&self, pages: usize) -> bool {
        core::arch::wasm32::memory_grow(0, pages) != usize::MAX
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Pages for LinearMemory {
    fn initial(&self) -> (usize, usize) {
        (0, 0)
    }

    fn grow(&self, _pages: usize) -> bool {
        false
    }
}

/// A bump allocator over [`Pages`]; see the module documentation.
#[derive(Debug)]
pub struct Arena<P: Pages = LinearMemory> {
    pages: P,
    /// Next free address; 0 before the first allocation.
    next: Cell<usize>,
    /// End of the memory that exists.
    end: Cell<usize>,
    /// Address of the most recent block (0: none that can be resized in place).
    last: Cell<usize>,
}

// SAFETY: a wasm32 plugin built without the `atomics` feature has one thread per instance,
// so the global allocator is never used from two threads at once.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl Sync for Arena<LinearMemory> {}

impl Arena<LinearMemory> {
    /// An arena over this instance's linear memory.
    pub const fn new() -> Self {
        Self::over(LinearMemory)
    }
}

impl Default for Arena<LinearMemory> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Pages> Arena<P> {
    /// An arena over `pages`.
    pub const fn over(pages: P) -> Self {
        Self {
            pages,
            next: Cell::new(0),
            end: Cell::new(0),
            last: Cell::new(0),
        }
    }

    /// Makes `start..start + size` exist, growing the memory if needed.
    fn reserve(&self, start: usize, size: usize) -> bool {
        let Some(need) = start.checked_add(size) else {
            return false;
        };
        let end = self.end.get();
        if need <= end {
            return true;
        }
        let pages = (need - end).div_ceil(PAGE);
        if !self.pages.grow(pages) {
            return false;
        }
        self.end.set(end + pages * PAGE);
        true
    }

    fn start(&self) {
        if self.next.get() == 0 {
            let (first, end) = self.pages.initial();
            // Address 0 is never handed out, so that 0 can mean "none" above.
            self.next.set(first.max(1));
            self.end.set(end);
        }
    }

    /// Bytes handed out so far, counting the ones given back in place.
    pub fn used(&self) -> usize {
        let (first, _) = self.pages.initial();
        self.next.get().saturating_sub(first.max(1))
    }
}

// SAFETY: blocks never overlap: each starts at or after `next`, which only moves back when
// the most recent block is freed, and a block is resized in place only when it is the most
// recent one. Alignment is applied to the start address; `Layout` guarantees a power of two.
unsafe impl<P: Pages> GlobalAlloc for Arena<P> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.start();
        let align = layout.align();
        let Some(start) = self
            .next
            .get()
            .checked_add(align - 1)
            .map(|a| a & !(align - 1))
        else {
            return std::ptr::null_mut();
        };
        if !self.reserve(start, layout.size()) {
            return std::ptr::null_mut();
        }
        self.next.set(start + layout.size());
        self.last.set(start);
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        if ptr as usize == self.last.get() {
            self.next.set(ptr as usize);
            self.last.set(0);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let at = ptr as usize;
        if at == self.last.get() {
            if !self.reserve(at, new_size) {
                return std::ptr::null_mut();
            }
            self.next.set(at + new_size);
            return ptr;
        }
        // SAFETY: `new_size` rounded up to `layout.align()` does not overflow (the caller's
        // contract), so the layout is valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: the caller's contract for `realloc` makes `new_layout` non-zero-sized.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: `ptr` holds `layout.size()` bytes and `new` is a distinct block of
            // `new_size` bytes.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A real buffer of `max` pages, of which `pages` exist at first.
    struct Buffer {
        bytes: Vec<u64>,
        pages: RefCell<usize>,
        max: usize,
    }

    impl Buffer {
        fn base(&self) -> usize {
            self.bytes.as_ptr() as usize
        }
    }

    impl Pages for Buffer {
        fn initial(&self) -> (usize, usize) {
            (self.base(), self.base() + *self.pages.borrow() * PAGE)
        }
        fn grow(&self, pages: usize) -> bool {
            let mut now = self.pages.borrow_mut();
            if *now + pages > self.max {
                return false;
            }
            *now += pages;
            true
        }
    }

    fn arena(pages: usize, max: usize) -> Arena<Buffer> {
        Arena::over(Buffer {
            bytes: vec![0; max * PAGE / 8],
            pages: RefCell::new(pages),
            max,
        })
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("valid layout")
    }

    #[test]
    fn blocks_are_aligned_and_disjoint() {
        let a = arena(1, 1);
        let base = a.pages.base();
        let p1 = unsafe { a.alloc(layout(3, 1)) } as usize;
        let p2 = unsafe { a.alloc(layout(8, 8)) } as usize;
        let p3 = unsafe { a.alloc(layout(1, 64)) } as usize;
        assert_eq!(p1, base);
        assert_eq!(p2, base + 8, "aligned up past the first block");
        assert_eq!(p3 % 64, 0);
        assert!(p3 >= p2 + 8);
    }

    #[test]
    fn the_latest_block_is_freed_and_grown_in_place() {
        let a = arena(1, 1);
        let p = unsafe { a.alloc(layout(16, 8)) };
        let grown = unsafe { a.realloc(p, layout(16, 8), 100) };
        assert_eq!(grown, p, "the most recent block grows in place");
        unsafe { a.dealloc(grown, layout(100, 8)) };
        assert_eq!(
            a.used(),
            0,
            "freeing the most recent block gives its bytes back"
        );
    }

    #[test]
    fn older_blocks_are_copied_when_grown() {
        let a = arena(1, 1);
        let old = unsafe { a.alloc(layout(4, 1)) };
        unsafe { old.copy_from_nonoverlapping(b"abcd".as_ptr(), 4) };
        let _newer = unsafe { a.alloc(layout(4, 1)) };
        let moved = unsafe { a.realloc(old, layout(4, 1), 8) };
        assert_ne!(moved, old);
        let copied = unsafe { std::slice::from_raw_parts(moved, 4) };
        assert_eq!(copied, b"abcd");
    }

    #[test]
    fn grows_the_memory_and_fails_cleanly_at_the_cap() {
        let a = arena(1, 3);
        let big = unsafe { a.alloc(layout(PAGE + 10, 8)) };
        assert!(!big.is_null(), "grown by a page");
        assert_eq!(*a.pages.pages.borrow(), 2);
        let too_big = unsafe { a.alloc(layout(4 * PAGE, 8)) };
        assert!(too_big.is_null(), "past the cap: null, not a panic");
        let small = unsafe { a.alloc(layout(10, 8)) };
        assert!(
            !small.is_null(),
            "a failed allocation leaves the arena usable"
        );
    }
}
