//! Two data channel ends back to back.
