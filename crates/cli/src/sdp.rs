//! `switchboard sdp`: compact SDP codes (docs/compact-sdp.md) and QR codes on the command line.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use qrcode::render::{svg, unicode};
use qrcode::{EcLevel, QrCode};
use switchboard_protocol::compact::{Description, TextForm};

/// Subcommands of `switchboard sdp`.
#[derive(Subcommand)]
pub enum SdpCommand {
    /// Read an SDP offer or answer on stdin; print its compact code.
    Encode {
        /// Text form of the code.
        #[arg(long, value_enum, default_value_t = Form::Url)]
        form: Form,
    },
    /// Read a code (argument or stdin, any form); print the SDP it stands for.
    Decode {
        /// The code; read from stdin when absent.
        code: Option<String>,
    },
    /// Read an SDP (or a code) on stdin; print a QR code in the terminal or write SVG / PNG.
    Qr(QrArgs),
}

/// Text forms of a code.
#[derive(Clone, Copy, ValueEnum)]
pub enum Form {
    /// Base64url: links (`#code`) and copy-paste.
    Url,
    /// Base45: the smallest QR code (alphanumeric mode).
    Qr,
    /// Hexadecimal bytes.
    Hex,
}

/// Options of `switchboard sdp qr`.
#[derive(Args)]
pub struct QrArgs {
    /// Put `URL#<code>` in the QR code (a link a phone camera opens) instead of the bare code.
    #[arg(long)]
    link: Option<String>,
    /// Write an SVG image here instead of printing.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Write a PNG image here instead of printing.
    #[arg(long)]
    png: Option<PathBuf>,
    /// Pixels per QR module in the PNG.
    #[arg(long, default_value_t = 8)]
    scale: u32,
}

/// Runs a `switchboard sdp` subcommand.
pub fn run(command: SdpCommand) -> ExitCode {
    match execute(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("switchboard sdp: {message}");
            ExitCode::from(2)
        }
    }
}

fn execute(command: SdpCommand) -> Result<(), String> {
    match command {
        SdpCommand::Encode { form } => {
            let sdp = read_stdin()?;
            let bytes = encode_sdp(&sdp)?;
            let code = match form {
                Form::Url => TextForm::Url.encode(&bytes),
                Form::Qr => TextForm::Qr.encode(&bytes),
                Form::Hex => bytes.iter().map(|b| format!("{b:02x}")).collect(),
            };
            println!("{code}");
            eprintln!(
                "{} bytes of SDP -> {} bytes compact; {} characters",
                sdp.len(),
                bytes.len(),
                code.len()
            );
            Ok(())
        }
        SdpCommand::Decode { code } => {
            let code = match code {
                Some(code) => code,
                None => read_stdin()?,
            };
            print!("{}", decode_code(&code)?.to_sdp());
            Ok(())
        }
        SdpCommand::Qr(args) => qr(args),
    }
}

fn read_stdin() -> Result<String, String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("(reading from stdin; end with Ctrl-D)");
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    Ok(text)
}

fn encode_sdp(sdp: &str) -> Result<Vec<u8>, String> {
    let description = Description::from_sdp(sdp).map_err(|e| e.to_string())?;
    description.encode().map_err(|e| e.to_string())
}

/// A code in any text form, or a link to one.
fn decode_code(code: &str) -> Result<Description, String> {
    Description::from_code(code).map_err(|e| format!("not a valid code: {e}"))
}

fn qr(args: QrArgs) -> Result<(), String> {
    let input = read_stdin()?;
    let bytes = if input.trim_start().starts_with("v=") {
        encode_sdp(&input)?
    } else {
        decode_code(&input)?.encode().map_err(|e| e.to_string())?
    };
    let content = match &args.link {
        Some(link) => format!("{link}#{}", TextForm::Url.encode(&bytes)),
        None => TextForm::Qr.encode(&bytes),
    };
    let code = QrCode::with_error_correction_level(content.as_bytes(), EcLevel::L)
        .map_err(|e| format!("cannot make a QR code: {e}"))?;
    let version = match code.version() {
        qrcode::Version::Normal(n) | qrcode::Version::Micro(n) => n,
    };
    eprintln!(
        "{} bytes compact -> {} characters -> QR version {version} ({}x{} modules, error correction L)",
        bytes.len(),
        content.len(),
        code.width(),
        code.width()
    );
    if let Some(path) = &args.svg {
        let image = code
            .render::<svg::Color<'_>>()
            .min_dimensions(256, 256)
            .build();
        std::fs::write(path, image).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.png {
        write_png(&code, args.scale, path)?;
    }
    if args.svg.is_none() && args.png.is_none() {
        println!(
            "{}",
            code.render::<unicode::Dense1x2>()
                .dark_color(unicode::Dense1x2::Light)
                .light_color(unicode::Dense1x2::Dark)
                .build()
        );
    }
    Ok(())
}

/// A black-on-white PNG with a four-module quiet zone.
fn write_png(code: &QrCode, scale: u32, path: &PathBuf) -> Result<(), String> {
    const QUIET: u32 = 4;
    let scale = scale.clamp(1, 64);
    let modules = code.width() as u32;
    let side = (modules + 2 * QUIET) * scale;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; (side * side) as usize];
    for y in 0..modules {
        for x in 0..modules {
            if colors[(y * modules + x) as usize] != qrcode::Color::Dark {
                continue;
            }
            for dy in 0..scale {
                let row = ((y + QUIET) * scale + dy) * side;
                let start = (row + (x + QUIET) * scale) as usize;
                pixels[start..start + scale as usize].fill(0);
            }
        }
    }
    let file =
        std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| format!("cannot write PNG: {e}"))?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| format!("cannot write PNG: {e}"))?;
    Ok(())
}
