//! The AV1 RTP dependency descriptor (the header extension
//! `https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension`,
//! its appendix A): which frame a packet belongs to, where that frame starts and ends,
//! and through a frame dependency template, its spatial and temporal layer. Keyframes
//! carry the template dependency structure the later packets refer to by template id,
//! so reading is stateful: a [`DependencyDescriptorReader`] remembers the last structure.
//! Read only, bit by bit, every read checked against the end: no input panics.
//!
//! ```text
//!  S|E|TEMPLATE_ID(6)|FRAME_NUMBER(16)        mandatory, 3 bytes
//!  P|A|D|F|C                                  if longer: structure (P), active decode
//!                                             targets (A), custom DTIs, fdiffs, chains
//!  [template dependency structure]            if P: offset, decode targets, templates
//!  [active decode targets bitmask]            if A: one bit per decode target
//!  [custom DTIs] [custom fdiffs] [chains]     if D, F, C: this frame's own
//!  zero padding to the end
//! ```

#[cfg(test)]
pub(crate) mod tests;

use thiserror::Error;

/// Templates a structure can hold (template ids are 6 bits).
pub const MAX_TEMPLATES: usize = 64;
/// Decode targets a structure can declare (`dt_cnt_minus_one` is 5 bits).
pub const MAX_DECODE_TARGETS: usize = 32;

/// Why a dependency descriptor could not be read. Nothing read is kept on error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DdError {
    /// The extension ends before its fields do (its mandatory part is 3 bytes).
    #[error("the dependency descriptor ends before its fields do")]
    Truncated,
    /// The packet refers to a structure, and none was read yet (one comes with keyframes).
    #[error("no template dependency structure read yet")]
    NoStructure,
    /// The template id names no template of the structure.
    #[error("template id {0} is not in the structure")]
    UnknownTemplate(u8),
    /// A structure with more templates than template ids can name.
    #[error("more than {MAX_TEMPLATES} templates in the structure")]
    TooManyTemplates,
}

/// A decode target indication (spec table A.1): what a frame is to a decode target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dti {
    /// `-`: not part of the decode target.
    NotPresent,
    /// `D`: part of it, and no later frame of it depends on this one.
    Discardable,
    /// `S`: a switch point: a decoder may start the decode target here.
    Switch,
    /// `R`: part of it, and required by later frames of it.
    Required,
}

/// The DTIs of one frame or template, two bits per decode target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dtis(u64);

impl Dtis {
    /// The indication for decode target `dt` (`NotPresent` past the last).
    pub fn get(self, dt: usize) -> Dti {
        if dt >= MAX_DECODE_TARGETS {
            return Dti::NotPresent;
        }
        match (self.0 >> (2 * dt)) & 0b11 {
            0 => Dti::NotPresent,
            1 => Dti::Discardable,
            2 => Dti::Switch,
            _ => Dti::Required,
        }
    }

    fn set(&mut self, dt: usize, value: u32) {
        self.0 |= u64::from(value & 0b11) << (2 * dt);
    }
}

/// One frame dependency template of a structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameTemplate {
    pub spatial_id: u8,
    pub temporal_id: u8,
    pub dtis: Dtis,
    /// How many frames back each frame it depends on is (1..=16).
    pub fdiffs: Vec<u8>,
    /// Per chain, how many frames back the previous frame of the chain is (0: none).
    pub chain_fdiffs: Vec<u8>,
}

/// The template dependency structure, as a keyframe's descriptor carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateStructure {
    /// Template id of the first template (ids count on from it, modulo 64).
    pub template_id_offset: u8,
    /// Decode targets, 1..=32.
    pub decode_targets: usize,
    /// In the order of their ids, lowest spatial then temporal layer first.
    pub templates: Vec<FrameTemplate>,
    /// Chains, 0..=decode targets.
    pub chains: usize,
    /// The chain protecting each decode target (empty without chains).
    pub protected_by: Vec<u8>,
    /// The highest (spatial id, temporal id) of each decode target.
    pub decode_target_layers: Vec<(u8, u8)>,
    /// Render width and height of each spatial layer, lowest first, if given.
    pub resolutions: Option<Vec<(u16, u16)>>,
}

impl TemplateStructure {
    /// Spatial layers: the highest spatial id of its templates, plus one.
    pub fn spatial_layers(&self) -> u8 {
        self.templates
            .iter()
            .map(|t| t.spatial_id)
            .max()
            .map_or(0, |s| s + 1)
    }

    /// Temporal layers: the highest temporal id of its templates, plus one.
    pub fn temporal_layers(&self) -> u8 {
        self.templates
            .iter()
            .map(|t| t.temporal_id)
            .max()
            .map_or(0, |t| t + 1)
    }

    /// The template a template id names, if the structure has it.
    pub fn template(&self, id: u8) -> Option<&FrameTemplate> {
        let index = (usize::from(id) + MAX_TEMPLATES - usize::from(self.template_id_offset))
            % MAX_TEMPLATES;
        self.templates.get(index)
    }
}

/// What one packet's descriptor says of its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdFrame {
    /// The first packet of the frame.
    pub start_of_frame: bool,
    /// The last packet of the frame.
    pub end_of_frame: bool,
    pub template_id: u8,
    /// Counts frames, wrapping at 2^16.
    pub frame_number: u16,
    pub spatial_id: u8,
    pub temporal_id: u8,
    /// The frame's DTIs: its own if it has custom ones, else its template's.
    pub dtis: Dtis,
    /// The packet carried a new structure: it is (part of) a keyframe, which the
    /// structure's templates start from.
    pub new_structure: bool,
    /// The decode targets the encoder produces now, one bit each (lowest first), when
    /// the packet says (a new structure means all of its targets).
    pub active_decode_targets: Option<u32>,
}

impl DdFrame {
    /// The first packet of a keyframe: of the base spatial layer's frame, with the
    /// structure the templates of the frames after it refer to.
    pub fn starts_keyframe(&self) -> bool {
        self.new_structure && self.start_of_frame && self.spatial_id == 0
    }
}

/// Reads the descriptors of one stream, remembering the structure of the last packet
/// that carried one.
#[derive(Debug, Clone, Default)]
pub struct DependencyDescriptorReader {
    structure: Option<TemplateStructure>,
}

impl DependencyDescriptorReader {
    /// The structure packets refer to now, if one was read.
    pub fn structure(&self) -> Option<&TemplateStructure> {
        self.structure.as_ref()
    }

    /// Reads one packet's descriptor (the extension's data). A new structure in it is
    /// remembered only if the whole descriptor reads.
    pub fn read(&mut self, data: &[u8]) -> Result<DdFrame, DdError> {
        let mut r = Bits::new(data);
        let start_of_frame = r.flag()?;
        let end_of_frame = r.flag()?;
        let template_id = r.bits(6)? as u8;
        let frame_number = r.bits(16)? as u16;
        // Without extended fields (3 bytes), no custom fields either.
        let [
            mut has_structure,
            mut has_active,
            mut custom_dtis,
            mut custom_fdiffs,
        ] = [false; 4];
        let mut custom_chains = false;
        if data.len() > 3 {
            [has_structure, has_active, custom_dtis, custom_fdiffs] =
                [r.flag()?, r.flag()?, r.flag()?, r.flag()?];
            custom_chains = r.flag()?;
        }
        let new = if has_structure {
            Some(read_structure(&mut r)?)
        } else {
            None
        };
        let structure = new
            .as_ref()
            .or(self.structure.as_ref())
            .ok_or(DdError::NoStructure)?;
        let dt_count = structure.decode_targets;
        let mut active_decode_targets = new.as_ref().map(|_| all_targets(dt_count));
        if has_active {
            active_decode_targets = Some(r.bits(dt_count)?);
        }
        let template = structure
            .template(template_id)
            .ok_or(DdError::UnknownTemplate(template_id))?;
        let mut dtis = template.dtis;
        if custom_dtis {
            dtis = Dtis::default();
            for dt in 0..dt_count {
                dtis.set(dt, r.bits(2)?);
            }
        }
        if custom_fdiffs {
            // next_fdiff_size (2 bits), then fdiff_minus_one of 4 × that many bits.
            loop {
                let size = r.bits(2)? as usize;
                if size == 0 {
                    break;
                }
                r.bits(4 * size)?;
            }
        }
        if custom_chains {
            for _ in 0..structure.chains {
                r.bits(8)?;
            }
        }
        let frame = DdFrame {
            start_of_frame,
            end_of_frame,
            template_id,
            frame_number,
            spatial_id: template.spatial_id,
            temporal_id: template.temporal_id,
            dtis,
            new_structure: new.is_some(),
            active_decode_targets,
        };
        if new.is_some() {
            self.structure = new;
        }
        Ok(frame)
    }
}

fn all_targets(count: usize) -> u32 {
    u32::MAX >> (32 - count.clamp(1, 32))
}

fn read_structure(r: &mut Bits<'_>) -> Result<TemplateStructure, DdError> {
    let template_id_offset = r.bits(6)? as u8;
    let decode_targets = r.bits(5)? as usize + 1;
    // template_layers: each template's layer follows from the previous one's.
    let mut templates = Vec::new();
    let (mut spatial_id, mut temporal_id) = (0u8, 0u8);
    loop {
        if templates.len() == MAX_TEMPLATES {
            return Err(DdError::TooManyTemplates);
        }
        templates.push(FrameTemplate {
            spatial_id,
            temporal_id,
            dtis: Dtis::default(),
            fdiffs: Vec::new(),
            chain_fdiffs: Vec::new(),
        });
        match r.bits(2)? {
            0 => {}
            1 => temporal_id += 1,
            2 => (spatial_id, temporal_id) = (spatial_id + 1, 0),
            _ => break,
        }
    }
    for t in &mut templates {
        for dt in 0..decode_targets {
            t.dtis.set(dt, r.bits(2)?);
        }
    }
    for t in &mut templates {
        while r.flag()? {
            t.fdiffs.push(r.bits(4)? as u8 + 1);
        }
    }
    let chains = r.ns(decode_targets as u32 + 1)? as usize;
    let mut protected_by = Vec::new();
    if chains > 0 {
        for _ in 0..decode_targets {
            protected_by.push(r.ns(chains as u32)? as u8);
        }
        for t in &mut templates {
            for _ in 0..chains {
                t.chain_fdiffs.push(r.bits(4)? as u8);
            }
        }
    }
    // decode_target_layers: derived, nothing read.
    let decode_target_layers = (0..decode_targets)
        .map(|dt| {
            let present = templates
                .iter()
                .filter(|t| t.dtis.get(dt) != Dti::NotPresent);
            present.fold((0, 0), |(s, t), f| {
                (s.max(f.spatial_id), t.max(f.temporal_id))
            })
        })
        .collect();
    let resolutions = if r.flag()? {
        let mut sizes = Vec::new();
        for _ in 0..=spatial_id {
            let width = r.bits(16)? as u16;
            let height = r.bits(16)? as u16;
            // Sent minus one: 0 is 1 pixel, 65535 is 65536 (kept saturated).
            sizes.push((width.saturating_add(1), height.saturating_add(1)));
        }
        Some(sizes)
    } else {
        None
    };
    Ok(TemplateStructure {
        template_id_offset,
        decode_targets,
        templates,
        chains,
        protected_by,
        decode_target_layers,
        resolutions,
    })
}

/// Reads bits most significant first; every read is checked against the end.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    /// `f(n)` of the spec, n ≤ 32.
    fn bits(&mut self, n: usize) -> Result<u32, DdError> {
        debug_assert!(n <= 32);
        if self.at + n > self.data.len() * 8 {
            return Err(DdError::Truncated);
        }
        let mut v = 0u64;
        for _ in 0..n {
            let bit = (self.data[self.at / 8] >> (7 - self.at % 8)) & 1;
            v = (v << 1) | u64::from(bit);
            self.at += 1;
        }
        Ok(v as u32)
    }

    fn flag(&mut self) -> Result<bool, DdError> {
        Ok(self.bits(1)? == 1)
    }

    /// `ns(n)` of the spec: a value below `n` (n ≥ 1) in as few bits as it takes.
    fn ns(&mut self, n: u32) -> Result<u32, DdError> {
        let w = (32 - n.leading_zeros()) as usize;
        let m = (1u32 << w) - n;
        let v = self.bits(w - 1)?;
        if v < m {
            return Ok(v);
        }
        let extra = self.bits(1)?;
        Ok((v << 1) - m + extra)
    }
}
