//! "This wasn't me": the signed link in every notice to an account's owner ([`link`]) and the
//! pages behind it ([`page`]), served by the public listener (`crate::web::public`); the owner's
//! answer is kept in the store's `reports` table (ARCHITECTURE.md §2.9).

pub mod link;
pub mod page;
